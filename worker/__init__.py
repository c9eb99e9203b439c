"""Worker: pgmq consumer, MX Merchant client, operator CLI."""
