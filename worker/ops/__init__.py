"""Helpers of the operator commands (worker/commands): database calls and MX access."""
