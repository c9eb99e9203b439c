"""The practice dashboard: staff sign in and work their memberships in a browser.

Server-rendered HTML (Litestar + Jinja2) with htmx; every read and write goes through the
``api`` schema as the signed-in user, under RLS (``dashboard.db``).
"""
