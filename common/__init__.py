"""Code both services share: structured logs."""
