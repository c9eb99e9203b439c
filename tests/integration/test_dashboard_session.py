"""Sign-in, tokens and cookies: tampered, foreign and expired tokens, refresh, real sign-out,
failed sign-in limits, invitations, and Supabase's published keys (JWKS) on the same
verification path."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from dashboard.auth import ExpiredToken, InvalidToken, TokenVerifier
from tests.support.dashboard import PASSWORD, csrf_token, sign_in, start_dashboard
from tests.support.dashboard_fixtures import Dash
from worker.__main__ import main as worker_main

ACCESS, REFRESH = "mxd_access", "mxd_refresh"


def _claims(dash: Dash, email: str, **changes: Any) -> dict[str, Any]:
    with psycopg.connect(dash.owner_url) as conn:
        row = conn.execute("select id from auth.users where email = %s", (email,)).fetchone()
    assert row is not None
    now = int(time.time())
    claims = {
        "sub": str(row[0]),
        "email": email,
        "role": "authenticated",
        "aud": "authenticated",
        "iat": now,
        "exp": now + 600,
    }
    claims.update(changes)
    return claims


def _fresh(dash: Dash, access: str | None, refresh: str | None = None) -> httpx.Client:
    client = httpx.Client(base_url=dash.base_url, timeout=10)
    if access is not None:
        client.cookies.set(ACCESS, access, domain="127.0.0.1")
    if refresh is not None:
        client.cookies.set(REFRESH, refresh, domain="127.0.0.1")
    return client


def test_session_cookies_are_httponly_and_samesite(dash: Dash) -> None:
    client = httpx.Client(base_url=dash.base_url, timeout=10)
    token = csrf_token(client.get("/auth/sign-in").text)
    response = client.post(
        "/auth/sign-in",
        data={"email": dash.world.users["staff_a"], "password": PASSWORD, "_csrf_token": token},
    )
    cookies = [v for k, v in response.headers.multi_items() if k == "set-cookie"]
    session = [c for c in cookies if c.startswith((ACCESS, REFRESH))]
    assert len(session) == 2
    for cookie in session:
        assert "HttpOnly" in cookie
        assert "SameSite=Lax" in cookie


def test_secure_flag_by_default(dash: Dash) -> None:
    server = start_dashboard(dash.dashboard_db_url, dashboard_cookie_secure=True)
    try:
        page = httpx.get(f"{server.base_url}/auth/sign-in")
        csrf = page.headers.get_list("set-cookie")
        assert csrf
        assert all("Secure" in c for c in csrf)
        # httpx keeps Secure cookies for https: hand the CSRF cookie over by hand
        response = httpx.post(
            f"{server.base_url}/auth/sign-in",
            data={
                "email": dash.world.users["staff_a"],
                "password": PASSWORD,
                "_csrf_token": csrf_token(page.text),
            },
            headers={"cookie": csrf[0].split(";")[0]},
        )
        assert response.status_code == 303
        cookies = [
            c for c in response.headers.get_list("set-cookie") if c.startswith((ACCESS, REFRESH))
        ]
        assert len(cookies) == 2
        assert all("Secure" in c for c in cookies)
    finally:
        server.stop()


def test_tampered_foreign_and_malformed_tokens_lead_to_sign_in(dash: Dash) -> None:
    good = sign_in(dash.base_url, dash.world.users["staff_a"]).cookies[ACCESS]
    header, payload, signature = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "==="))
    claims["sub"] = dash.world.user_ids["owner_b"]  # try to become someone else
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    secret = dash.server.settings.dashboard_jwt_secret
    for token in (
        f"{header}.{forged}.{signature}",
        good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB"),
        jwt.encode(_claims(dash, dash.world.users["staff_a"]), "another secret", "HS256"),
        jwt.encode(_claims(dash, dash.world.users["staff_a"], aud="anon"), secret, "HS256"),
        jwt.encode(
            _claims(dash, dash.world.users["staff_a"], role="service_role"), secret, "HS256"
        ),
        jwt.encode(_claims(dash, dash.world.users["staff_a"]), None, "none"),
        "not-a-token",
    ):
        client = _fresh(dash, token)
        response = client.get(f"/p/{dash.world.a.id}/memberships")
        assert response.status_code == 303, token
        assert response.headers["location"].startswith("/auth/sign-in")
        cleared = [v for k, v in response.headers.multi_items() if k == "set-cookie"]
        assert any(c.startswith(f"{ACCESS}=;") and "Max-Age=0" in c for c in cleared)


def test_expired_token_is_refreshed_or_leads_to_sign_in(dash: Dash) -> None:
    signed_in = sign_in(dash.base_url, dash.world.users["staff_a"])
    refresh = signed_in.cookies[REFRESH]
    secret = dash.server.settings.dashboard_jwt_secret
    expired = jwt.encode(
        _claims(dash, dash.world.users["staff_a"], exp=int(time.time()) - 5), secret, "HS256"
    )
    alone = _fresh(dash, expired).get(f"/p/{dash.world.a.id}/memberships")
    assert alone.status_code == 303
    assert alone.headers["location"].startswith("/auth/sign-in")
    client = _fresh(dash, expired, refresh)
    response = client.get(f"/p/{dash.world.a.id}/memberships")
    assert response.status_code == 200
    assert client.cookies[ACCESS] != expired
    assert client.cookies[REFRESH] != refresh  # rotated
    # (reuse of a rotated refresh token after the reuse interval ends the session: pgTAP 150)


def test_sign_out_is_real(dash: Dash) -> None:
    client = sign_in(dash.base_url, dash.world.users["admin_a"])
    old_refresh = client.cookies[REFRESH]
    token = csrf_token(client.get("/practices").text)
    response = client.post("/auth/sign-out", data={"_csrf_token": token})
    assert response.status_code == 303
    assert response.headers["location"] == "/auth/sign-in"
    assert REFRESH not in client.cookies
    secret = dash.server.settings.dashboard_jwt_secret
    expired = jwt.encode(
        _claims(dash, dash.world.users["admin_a"], exp=int(time.time()) - 5), secret, "HS256"
    )
    again = _fresh(dash, expired, old_refresh).get("/")
    assert again.status_code == 303
    assert again.headers["location"].startswith("/auth/sign-in")


def test_failed_sign_ins_are_limited_per_email_and_per_address(dash: Dash) -> None:
    server = start_dashboard(
        dash.dashboard_db_url,
        dashboard_signin_failures_per_email=3,
        dashboard_signin_failures_per_address=5,
    )
    try:
        client = httpx.Client(base_url=server.base_url, timeout=10)
        token = csrf_token(client.get("/auth/sign-in").text)
        email = dash.world.users["staff_a"]

        def attempt(address_email: str, password: str) -> httpx.Response:
            return client.post(
                "/auth/sign-in",
                data={"email": address_email, "password": password, "_csrf_token": token},
            )

        for _ in range(3):
            assert attempt(email, "wrong").status_code == 401
        blocked = attempt(email, PASSWORD)  # even the right password now waits
        assert blocked.status_code == 429
        assert "Too many failed sign-ins" in blocked.text
        # per address: other e-mails from the same address
        assert attempt("someone@example.test", "x").status_code == 401
        assert attempt("else@example.test", "x").status_code == 401
        assert attempt(dash.world.users["owner_a"], PASSWORD).status_code == 429
    finally:
        server.stop()


def test_wrong_password_says_so(dash: Dash) -> None:
    client = httpx.Client(base_url=dash.base_url, timeout=10)
    token = csrf_token(client.get("/auth/sign-in").text)
    response = client.post(
        "/auth/sign-in",
        data={"email": dash.world.users["owner_b"], "password": "nope", "_csrf_token": token},
    )
    assert response.status_code == 401
    assert "wrong" in response.text
    assert ACCESS not in client.cookies


def test_invitation_link_sets_the_password(dash: Dash) -> None:
    email = f"invited-{time.monotonic_ns()}@example.test"
    with psycopg.connect(dash.owner_url, autocommit=True) as conn:
        user = conn.execute("insert into auth.users (email) values (%s) returning id", (email,))
        user_id = user.fetchone()[0]  # type: ignore[index]
        conn.execute(
            "insert into app.practice_members (practice_id, user_id, role) "
            "values (%s, %s, 'staff')",
            (dash.world.a.id, user_id),
        )
        link = conn.execute(
            "select auth.local_new_one_time_token(%s, 'invite', 3600)", (user_id,)
        ).fetchone()[0]  # type: ignore[index]
    client = httpx.Client(base_url=dash.base_url, timeout=10)
    page = client.get(f"/auth/confirm?token={link}&type=invite")
    assert "choose your password" in page.text
    token = csrf_token(page.text)
    short = client.post(
        "/auth/confirm",
        data={
            "token": link,
            "type": "invite",
            "password": "x",
            "password_again": "x",
            "_csrf_token": token,
        },
    )
    assert short.status_code == 422
    done = client.post(
        "/auth/confirm",
        data={
            "token": link,
            "type": "invite",
            "password": "a new password",
            "password_again": "a new password",
            "_csrf_token": token,
        },
    )
    assert done.status_code == 303
    assert client.get("/").headers["location"] == f"/p/{dash.world.a.id}/memberships"
    used = httpx.Client(base_url=dash.base_url, timeout=10)
    again = used.post(
        "/auth/confirm",
        data={
            "token": link,
            "type": "invite",
            "password": "other password",
            "password_again": "other password",
            "_csrf_token": csrf_token(used.get("/auth/sign-in").text),
        },
    )
    assert again.status_code == 400
    assert sign_in(dash.base_url, email, "a new password").cookies[ACCESS]


def test_magic_link_request_answers_the_same_for_unknown_emails(dash: Dash) -> None:
    client = httpx.Client(base_url=dash.base_url, timeout=10)
    token = csrf_token(client.get("/auth/sign-in").text)
    known = client.post(
        "/auth/magic-link", data={"email": dash.world.users["owner_b"], "_csrf_token": token}
    )
    unknown = client.post(
        "/auth/magic-link", data={"email": "nobody-at-all@example.test", "_csrf_token": token}
    )
    assert known.status_code == unknown.status_code == 200
    assert "Check your e-mail" in known.text
    with psycopg.connect(dash.owner_url) as conn:
        row = conn.execute(
            "select count(*) from auth.local_one_time_tokens as t join auth.users as u "
            "on u.id = t.user_id where u.email = %s and t.kind = 'magiclink'",
            (dash.world.users["owner_b"],),
        ).fetchone()
    assert row is not None
    assert row[0] == 1


@pytest.fixture
def jwks_server() -> Iterator[tuple[str, ec.EllipticCurvePrivateKey]]:
    key = ec.generate_private_key(ec.SECP256R1())
    public = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    body = json.dumps({"keys": [{**public, "kid": "k1", "alg": "ES256", "use": "sig"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/auth/v1/.well-known/jwks.json", key
    server.shutdown()


async def test_published_keys_verify_on_the_same_path(
    jwks_server: tuple[str, ec.EllipticCurvePrivateKey],
) -> None:
    url, key = jwks_server
    verifier = TokenVerifier("", url, "authenticated", "")
    now = int(time.time())
    claims = {
        "sub": "00000000-0000-4000-8000-000000000001",
        "role": "authenticated",
        "aud": "authenticated",
        "exp": now + 60,
        "email": "x@example.test",
    }
    token = jwt.encode(claims, key, "ES256", headers={"kid": "k1"})
    identity = await verifier.verify(token)
    assert identity.user_id == claims["sub"]
    other = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(InvalidToken):
        await verifier.verify(jwt.encode(claims, other, "ES256", headers={"kid": "k1"}))
    with pytest.raises(ExpiredToken):
        await verifier.verify(
            jwt.encode(claims | {"exp": now - 10}, key, "ES256", headers={"kid": "k1"})
        )
    with pytest.raises(InvalidToken):  # no HS256 secret configured: refused, not guessed
        await verifier.verify(jwt.encode(claims, "secret", "HS256"))


def test_member_add_invitation_lands_on_the_dashboard(
    dash: Dash, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", dash.owner_url)
    monkeypatch.setenv("DASHBOARD_PUBLIC_URL", dash.base_url)
    monkeypatch.delenv("SUPABASE_URL", raising=False)
    with psycopg.connect(dash.owner_url) as conn:
        slug = conn.execute(
            "select slug from app.practices where id = %s", (dash.world.b.id,)
        ).fetchone()
    assert slug is not None
    email = f"new-nurse-{time.monotonic_ns()}@example.test"
    code = worker_main(
        ["member", "add", "--practice", slug[0], "--email", email, "--role", "staff", "--json"]
    )
    assert code == 0
    added = json.loads(capsys.readouterr().out)
    link = added["invite_link"]
    assert link.startswith(f"{dash.base_url}/auth/confirm?token=")
    client = httpx.Client(timeout=10)
    page = client.get(link)
    assert "choose your password" in page.text
    done = client.post(
        f"{dash.base_url}/auth/confirm",
        data={
            "token": link.split("token=")[1].split("&")[0],
            "type": "invite",
            "password": "a fine password",
            "password_again": "a fine password",
            "_csrf_token": csrf_token(page.text),
        },
    )
    assert done.status_code == 303
    home = client.get(f"{dash.base_url}/")
    assert home.headers["location"] == f"/p/{dash.world.b.id}/memberships"
