"""What keeps the local web UI the user's own: who may ask, what may change state, which files.

- Bound to a loopback address (the default), the server answers only requests whose Host header
  names that loopback address or `localhost` (a DNS-rebinding page cannot read it).
- Bound to any other address, every request must carry the random access token printed at start:
  `?token=` once (it becomes an HttpOnly, SameSite=Strict cookie and the address bar is cleaned),
  the cookie, or an `X-Lorastrap-Token` header.
- Every state-changing request carries the page's CSRF token (form field `csrf` or header
  `X-CSRF-Token`); a cross-site form cannot read it.
- Files are served only from inside the workspace: relative paths without `..` or hidden parts
  (except the few folders below), resolved with symlinks and checked to stay inside, and only
  file types the pages show.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from lorastrap.kernel.errors import UserError

TOKEN_COOKIE = "lorastrap_token"
TOKEN_HEADER = "x-lorastrap-token"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# what /file/ serves: pictures, captions, reports, LoRAs and engine files the pages link to
# (not .toml: lorastrap.toml may hold a database URL with its password)
SERVED_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".txt", ".json", ".html",
                             ".safetensors", ".tres", ".meta", ".log"})
SECURITY_HEADERS = [
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' data:; script-src 'self'; style-src 'self'; "
     b"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class Guard:
    """The server's secrets and rules, made once at start."""

    host: str
    port: int
    access_token: str | None = None  # None: loopback, no token needed
    csrf_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))

    @classmethod
    def for_bind(cls, host: str, port: int) -> Guard:
        return cls(host, port, None if is_loopback(host) else secrets.token_urlsafe(24))

    @property
    def local(self) -> bool:
        return self.access_token is None

    def host_allowed(self, header: str) -> bool:
        """Loopback binds answer only to loopback names (DNS rebinding); others rely on the token."""
        if not self.local:
            return True
        name = header[1:].split("]")[0] if header.startswith("[") else header.rsplit(":", 1)[0]
        return is_loopback(name)

    def token_ok(self, value: str | None) -> bool:
        return self.local or (bool(value) and secrets.compare_digest(str(value), str(self.access_token)))

    def csrf_ok(self, value: str | None) -> bool:
        return bool(value) and secrets.compare_digest(str(value), self.csrf_token)

    def url(self, path: str = "/") -> str:
        host = f"[{self.host}]" if ":" in self.host and not self.host.startswith("[") else self.host
        shown = "127.0.0.1" if host in ("0.0.0.0", "[::]") else host
        query = f"?token={self.access_token}" if self.access_token else ""
        return f"http://{shown}:{self.port}{path}{query}"


class GuardMiddleware:
    """Host check, access token and security headers on every request (HTTP and streams)."""

    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app, self.guard = app, guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        refusal = self._refusal(request)
        if refusal is not None:
            await refusal(scope, receive, send)
            return

        async def with_headers(message: dict) -> None:  # type: ignore[type-arg]
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, with_headers)

    def _refusal(self, request: Request) -> Response | None:
        if not self.guard.host_allowed(request.headers.get("host", "")):
            return PlainTextResponse("unknown Host header: open the address `lorastrap ui` printed", 421)
        if self.guard.local:
            return None
        query_token = request.query_params.get("token")
        if query_token is not None and self.guard.token_ok(query_token) and request.method == "GET":
            # one visit with ?token= sets the cookie; the address bar (and history) lose the token
            rest = urlencode([(k, v) for k, v in parse_qsl(request.url.query) if k != "token"])
            response = RedirectResponse(request.url.path + (f"?{rest}" if rest else ""), 303)
            response.set_cookie(TOKEN_COOKIE, query_token, httponly=True, samesite="strict")
            return response
        sent = request.headers.get(TOKEN_HEADER) or request.cookies.get(TOKEN_COOKIE) or query_token
        if not self.guard.token_ok(sent):
            return PlainTextResponse("access token missing or wrong: open the address with ?token=… "
                                     "that `lorastrap ui` printed", 401)
        return None


Handler = Callable[[Request], Awaitable[Response]]


def csrf_protected(guard_of: Callable[[Request], Guard]) -> Callable[[Handler], Handler]:
    """Wrap a POST handler: refuse (403) without the page's CSRF token, or from another origin."""

    def wrap(handler: Handler) -> Handler:
        async def checked(request: Request) -> Response:
            guard = guard_of(request)
            origin = request.headers.get("origin")
            if origin and origin != "null" and origin.split("://", 1)[-1] != request.headers.get("host"):
                return PlainTextResponse("cross-origin request refused", 403)
            sent = request.headers.get(CSRF_HEADER)
            if sent is None and request.headers.get("content-type", "").startswith(
                    ("application/x-www-form-urlencoded", "multipart/form-data")):
                sent = (await request.form()).get(CSRF_FIELD)  # type: ignore[assignment]
            if not guard.csrf_ok(sent if isinstance(sent, str) else None):
                return PlainTextResponse("missing or wrong CSRF token: reload the page and try again", 403)
            return await handler(request)

        checked.__name__ = handler.__name__
        checked.__doc__ = handler.__doc__
        return checked

    return wrap


def resolve_inside(root: Path, rel: str) -> Path:
    """A workspace file from a request path, or UserError. No absolute paths, no `..`, no hidden
    parts but .lorastrap/runs|logs (sample grids, job logs) and .rejected (set-aside candidates), no symlink that leads out, only SERVED_SUFFIXES."""
    if not rel or "\0" in rel or "\\" in rel:
        raise UserError("bad path")
    pure = PurePosixPath(rel)
    if pure.is_absolute() or any(part in ("", ".", "..") for part in rel.split("/")):
        raise UserError(f"{rel}: only plain paths inside the workspace are served")
    parts = pure.parts
    for i, part in enumerate(parts[:-1]):
        allowed = part == ".rejected" or (part == ".lorastrap" and parts[i + 1:i + 2] in (("runs",), ("logs",)))
        if part.startswith(".") and not allowed:
            raise UserError(f"{rel}: hidden folders are not served")
    if parts[-1].startswith(".") or pure.suffix.lower() not in SERVED_SUFFIXES:
        raise UserError(f"{rel}: this kind of file is not served")
    base = root.resolve()
    try:
        real = (base / pure).resolve(strict=True)
    except (OSError, RuntimeError):
        raise UserError(f"{rel}: no such file") from None
    if not real.is_relative_to(base) or not real.is_file():
        raise UserError(f"{rel}: outside the workspace or not a file")
    return real
