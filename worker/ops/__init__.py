"""Helpers of the operator commands (worker/commands): database calls, MX access, errors.
They never import the commands."""
