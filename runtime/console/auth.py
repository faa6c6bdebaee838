"""Console sign-in: the admin API's tokens held in an HttpOnly, SameSite=Strict cookie, and CSRF tokens.

A session is the API token itself in the `syncline_console` cookie (path /console, HttpOnly,
SameSite=Strict, Secure over https): nothing is kept on the server, so every node of a deployment
accepts it, and removing the token from the environment signs its holder out. The role and team are
looked up on every request exactly as the API does (`AdminApi.role`, `GovernanceApi.teams`).

Every form carries a CSRF token. Signed in, it is an HMAC of a fixed label keyed with the session
token (a page of another site can neither read the cookie nor compute it); on the sign-in form,
before a session exists, it is a random value also set in a short-lived cookie (double submit).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

SESSION_COOKIE = "syncline_console"
LOGIN_COOKIE = "syncline_console_login"
COOKIE_PATH = "/console"
MAX_TOKEN_LENGTH = 512


@dataclass(frozen=True)
class Session:
    """Who is signed in: the token (never shown), its role and, for a team token, its team."""

    token: str
    role: str  # viewer | operator
    team: str | None

    @property
    def operator(self) -> bool:
        return self.role == "operator"

    @property
    def csrf(self) -> str:
        return csrf_for(self.token)

    @property
    def who(self) -> str:
        """How the session is shown: role, team and a short fingerprint of the token."""
        tag = hashlib.sha256(self.token.encode()).hexdigest()[:8]
        team = f" of {self.team}" if self.team else ""
        return f"{self.role}{team} (token {tag})"


def csrf_for(token: str) -> str:
    return hmac.new(token.encode(), b"syncline-console-csrf", hashlib.sha256).hexdigest()


def plausible_token(token: str) -> bool:
    """A token as it can be sent in an Authorization header: printable ASCII without spaces."""
    return 0 < len(token) <= MAX_TOKEN_LENGTH and all(33 <= ord(ch) < 127 for ch in token)


def csrf_ok(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode("utf-8", "replace"))


def secure(request: Request) -> bool:
    return request.url.scheme == "https" or request.headers.get("x-forwarded-proto") == "https"


def set_session(response: Response, request: Request, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE, token, path=COOKIE_PATH, httponly=True, samesite="strict", secure=secure(request)
    )


def clear_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict")


def login_nonce(request: Request) -> str:
    """The sign-in form's CSRF value: the one in the login cookie, or a new one."""
    current = request.cookies.get(LOGIN_COOKIE, "")
    return current if len(current) == 43 else secrets.token_urlsafe(32)


def set_login_nonce(response: Response, request: Request, nonce: str) -> None:
    response.set_cookie(
        LOGIN_COOKIE, nonce, max_age=3600, path=COOKIE_PATH, httponly=True, samesite="strict", secure=secure(request)
    )
