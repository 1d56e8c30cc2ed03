"""Dashboard sign-in: the user pastes an API key once; it lives in a cookie that only the
``/ui`` pages receive, and every page resolves it to the same principal the API would."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote, urlsplit

from fastapi import Request, Response
from fastapi.responses import RedirectResponse

from orderhub.adapters.db.tenancy import ApiKeyRecord
from orderhub.domain.access import Permission, Role, allows

COOKIE_NAME = "orderhub_ui_key"
COOKIE_PATH = "/ui"
# A working day: long enough not to nag, short enough that a forgotten shared screen expires.
COOKIE_MAX_AGE = 12 * 60 * 60
LOGIN_PATH = "/ui/login"
HOME_PATH = "/ui/"


class KeyLookup(Protocol):
    """What sign-in needs from the read side."""

    def authenticate(self, plain_key: str) -> ApiKeyRecord | None:
        """The key record for a presented API key, or None when unknown."""


@dataclass(frozen=True, slots=True)
class Viewer:
    """The signed-in user, as proven by the API key in the cookie."""

    tenant_id: str
    key_id: str
    key_prefix: str
    role: Role


class SignInProblem(Exception):
    """Raised when a presented key can't open the dashboard; ``message`` is shown to the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def check_key(queries: KeyLookup, plain_key: str) -> Viewer:
    """Resolve a pasted or stored key to a viewer who may read orders; SignInProblem otherwise."""
    key = plain_key.strip()
    if not key:
        raise SignInProblem("Paste an API key to sign in.")
    # A key is a short ASCII token; anything else can't be one and isn't worth a query.
    if len(key) > 200 or not key.isascii() or not key.isprintable():
        raise SignInProblem("That is not an OrderHub API key. Keys look like ohk_… "
                            "(create one with `orderhub keys create --role viewer`).")
    record = queries.authenticate(key)
    if record is None or record.revoked:
        raise SignInProblem("That API key is unknown or has been revoked. Check it, or create a new one with "
                            "`orderhub keys create --role viewer`.")
    if not allows(record.role, Permission.ORDERS_READ):
        raise SignInProblem(f"The role {record.role.value!r} of this key may not read orders; "
                            "use a key with a role that may (viewer, operator or admin).")
    return Viewer(tenant_id=record.tenant_id, key_id=record.id, key_prefix=record.prefix, role=record.role)


def current_viewer(request: Request, queries: KeyLookup) -> Viewer | None:
    """The viewer whose key is in the request's cookie, or None (no cookie, or a key that
    no longer works: revoked since sign-in, or its role lost the permission)."""
    key = request.cookies.get(COOKIE_NAME)
    if not key:
        return None
    try:
        return check_key(queries, key)
    except SignInProblem:
        return None


def set_key_cookie(response: Response, request: Request, plain_key: str) -> None:
    """Store the key: HttpOnly (no script reads it), SameSite=Strict (no other site's page
    can make the browser send it), scoped to /ui (the JSON API never sees it as a credential),
    and Secure whenever the dashboard is served over HTTPS."""
    response.set_cookie(COOKIE_NAME, plain_key.strip(), max_age=COOKIE_MAX_AGE, path=COOKIE_PATH, httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")


def clear_key_cookie(response: Response, request: Request) -> None:
    """Forget the key (logout, or a stored key that stopped working)."""
    response.delete_cookie(COOKIE_NAME, path=COOKIE_PATH, httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")


def safe_next(target: str | None) -> str:
    """Where to go after sign-in: a dashboard path on this site, never another host (an
    open redirect would let a phishing link borrow our login page)."""
    if not target:
        return HOME_PATH
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or "\\" in target or not parts.path.startswith("/ui/"):
        return HOME_PATH
    if parts.path.startswith(LOGIN_PATH) or parts.path.startswith("/ui/static/") or "//" in parts.path:
        return HOME_PATH
    return target


def cross_site(request: Request) -> bool:
    """True when a browser says the form was posted from another site's page. The cookie is
    SameSite=Strict, but a cross-site POST to /ui/login could still sign a victim in with the
    attacker's key (login CSRF), so the sign-in and sign-out forms check Origin too.
    Requests without Origin (curl, scripts) are not browsers being tricked."""
    origin = request.headers.get("origin")
    if origin is None:
        return False
    host = request.headers.get("host", "")
    return origin == "null" or urlsplit(origin).netloc.lower() != host.lower()


def login_redirect(request: Request, *, forget: bool) -> RedirectResponse:
    """Send an anonymous visitor to the login page, remembering the page they wanted."""
    wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    location = LOGIN_PATH if safe_next(wanted) == HOME_PATH else f"{LOGIN_PATH}?next={quote(wanted, safe='')}"
    response = RedirectResponse(location, status_code=303)
    if forget:
        clear_key_cookie(response, request)
    return response
