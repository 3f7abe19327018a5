"""The dashboard: serves `web/` (a single-page app with no build step) from the Function App.

Two anonymous functions: `static/{*asset}` for scripts, styles and images, and the catch-all
`{*path}` for `/` and every page route (deep links get index.html; the client routes). Literal API
routes outrank the catch-all (ASP.NET route precedence, as the host and devhost's router apply it),
so only an unknown `/api/...` path reaches it, and that answers problem+json 404, never HTML.

Assets are addressed as `/static/<version>/<file>`, `<version>` being a digest of all of them:
index.html names the current one, relative module imports inherit it, so assets can be cached
forever (`immutable`) while index.html is revalidated every time (`no-cache` + ETag).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import re
import uuid
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import azure.durable_functions as df
import azure.functions as func

from functions.http_common import HSTS, problem, served_over_https

bp = df.Blueprint()

WEB_ROOT = Path(__file__).resolve().parent.parent / "web"
STATIC_PLACEHOLDER = b"{{static}}"
#: Minimum size worth compressing; smaller bodies grow with the gzip header.
GZIP_MIN_BYTES = 512



def content_security_policy(pubsub_endpoint: str | None) -> str:
    """The pages' CSP: everything from this origin only, plus WebSockets to our Web PubSub host
    (never any `ws:`/`wss:` host, which would let injected script talk to anyone)."""
    connect = ["'self'"]
    if pubsub_endpoint:
        parts = urlsplit(pubsub_endpoint)
        scheme = "wss" if parts.scheme == "https" else "ws"
        connect.append(f"{scheme}://{parts.netloc}")
    return "; ".join([
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        f"connect-src {' '.join(connect)}",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


@functools.cache
def dashboard_headers() -> dict[str, str]:
    """Headers of every page and asset; the Web PubSub host comes from the settings (read once)."""
    from shared.config import get_settings
    from shared.realtime.service import ConnectionInfo

    connection_string = get_settings().WEBPUBSUB_CONNECTION_STRING
    try:
        endpoint = ConnectionInfo.parse(connection_string).endpoint if connection_string else None
    except ValueError:
        endpoint = None  # real time is off (the app reports why elsewhere); the pages poll
    return {
        "Content-Security-Policy": content_security_policy(endpoint),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "strict-origin-when-cross-origin",
        "X-Frame-Options": "DENY",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    }


CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".json": "application/json",
    ".webmanifest": "application/manifest+json",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".woff2": "font/woff2",
    ".txt": "text/plain; charset=utf-8",
}
_COMPRESSIBLE = (".html", ".js", ".mjs", ".css", ".svg", ".json", ".webmanifest", ".txt")

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"

#: Client-side routes; anything else still gets index.html (the app shows "Page not found") but with 404.
PAGE_ROUTES = re.compile(
    r"^/?(?:|login|register|dashboard|teams|escalations|teams/[^/]+|tasks/[^/]+)/?$", re.IGNORECASE
)


@dataclass(frozen=True)
class Asset:
    """One file as served: its bytes, a gzip copy when worth it, a type and strong ETags."""

    body: bytes
    gzipped: bytes | None
    content_type: str
    etag: str

    @classmethod
    def of(cls, body: bytes, suffix: str) -> Asset:
        compress = suffix in _COMPRESSIBLE and len(body) >= GZIP_MIN_BYTES
        # mtime=0: the same bytes give the same gzip stream, so the ETag of each variant is stable.
        gzipped = gzip.compress(body, compresslevel=9, mtime=0) if compress else None
        digest = hashlib.sha256(body).hexdigest()[:20]
        return cls(body, gzipped, CONTENT_TYPES.get(suffix, "application/octet-stream"), f'"{digest}"')


@dataclass(frozen=True)
class Bundle:
    """Everything under web/: the versioned assets and index.html pointing at them."""

    version: str
    assets: dict[str, Asset]
    index: Asset


@functools.cache
def load_bundle(root: Path = WEB_ROOT) -> Bundle:
    """Read web/ once per worker (tens of KB, read synchronously once: cheaper than a thread hop)."""
    static = root / "static"
    files = sorted(p for p in static.rglob("*") if p.is_file())
    digest = hashlib.sha256()
    raw: dict[str, bytes] = {}
    for path in files:
        name = path.relative_to(static).as_posix()
        raw[name] = path.read_bytes()
        digest.update(name.encode() + b"\0" + raw[name] + b"\0")
    version = digest.hexdigest()[:12]
    assets = {name: Asset.of(body, PurePosixPath(name).suffix.lower()) for name, body in raw.items()}
    html = (root / "index.html").read_bytes().replace(STATIC_PLACEHOLDER, f"/static/{version}".encode())
    return Bundle(version, assets, Asset.of(html, ".html"))


def _accepts_gzip(header: str | None) -> bool:
    for part in (header or "").split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            quality = params.strip().removeprefix("q=").strip() if params.strip().startswith("q=") else "1"
            try:
                return float(quality) > 0
            except ValueError:
                return False
    return False


def _etag_matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    return any(tag.strip().removeprefix("W/") == etag for tag in if_none_match.split(","))


def serve_asset(req: func.HttpRequest, asset: Asset, *, cache_control: str, status: int = 200) -> func.HttpResponse:
    """The asset as this request wants it: 304 on a matching ETag, gzip when accepted, no body for HEAD."""
    use_gzip = asset.gzipped is not None and _accepts_gzip(req.headers.get("accept-encoding"))
    # Each encoding is its own representation, so it gets its own validator.
    etag = f'{asset.etag[:-1]}-gz"' if use_gzip else asset.etag
    headers = {**dashboard_headers(), "Cache-Control": cache_control, "ETag": etag, "Content-Type": asset.content_type}
    if served_over_https(req):
        headers["Strict-Transport-Security"] = HSTS
    if asset.gzipped is not None:
        headers["Vary"] = "Accept-Encoding"
    if status == 200 and _etag_matches(req.headers.get("if-none-match"), etag):
        return func.HttpResponse(status_code=304, headers=headers)
    if use_gzip:
        headers["Content-Encoding"] = "gzip"
    body = (asset.gzipped if use_gzip and asset.gzipped is not None else asset.body)
    return func.HttpResponse(b"" if req.method == "HEAD" else body, status_code=status, headers=headers)


def not_found_problem() -> func.HttpResponse:
    return problem(404, "Not Found", request_id=uuid.uuid4().hex, headers={"Cache-Control": "no-store"})


@bp.function_name("dashboard_asset")
@bp.route(route="static/{*asset}", methods=["GET", "HEAD"], auth_level=func.AuthLevel.ANONYMOUS)
async def dashboard_asset(req: func.HttpRequest) -> func.HttpResponse:
    """A script, style or image; cached forever when asked for under the current version."""
    bundle = load_bundle()
    version, _, name = req.route_params.get("asset", "").partition("/")
    asset = bundle.assets.get(name)
    if asset is None:
        return not_found_problem()
    # An older page asking after a deploy still gets the file, but must not cache it as that version.
    cache_control = IMMUTABLE if version == bundle.version else REVALIDATE
    return serve_asset(req, asset, cache_control=cache_control)


@bp.function_name("dashboard_page")
@bp.route(route="{*path}", methods=["GET", "HEAD"], auth_level=func.AuthLevel.ANONYMOUS)
async def dashboard_page(req: func.HttpRequest) -> func.HttpResponse:
    """index.html for `/` and every page route; problem+json 404 for an unknown API path."""
    path = req.route_params.get("path", "") or ""
    first = path.strip("/").split("/", 1)[0].lower()
    if first == "api":
        return not_found_problem()
    status = 200 if PAGE_ROUTES.match(path) else 404
    return serve_asset(req, load_bundle().index, cache_control=REVALIDATE, status=status)
