"""An OAuth 2.1 resource server: who an access token says is calling, or why it is refused.

Remote MCP clients (Claude and ChatGPT connectors, IDEs, the MCP Inspector) find the authorization
server through our Protected Resource Metadata (RFC 9728) and the `WWW-Authenticate` challenge of a
401, get a token there, and send it as `Authorization: Bearer`. `ResourceServer.authenticate` turns
that token into a `http_scope.Caller` (id = `sub`, else `client_id`; the token's scopes), or a
`Refused` carrying the HTTP status and the challenge RFC 6750 and the MCP authorization spec prescribe.

- JWTs are verified here, against the issuer's JWKS found through RFC 8414 / OpenID discovery: the
  signature with an algorithm from a pinned asymmetric list (never `none`, never HMAC: a public key
  used as an HMAC secret forges nothing), `iss`, `aud` naming this server (RFC 8707: a token minted
  for another resource is refused, never passed on), `exp`/`nbf` with `LEEWAY_SECONDS`. The JWKS is
  cached and refetched when a token names an unknown `kid` (key rotation), at most once per
  `JWKS_REFETCH_SECONDS`, so a flood of made-up kids cannot make us hammer the identity provider.
- Opaque tokens (not JWTs) go to the introspection endpoint (RFC 7662) when one is configured; its
  answers are cached by the token's SHA-256 for `INTROSPECTION_CACHE_SECONDS` at most.
- Discovery, JWKS and introspection go through httpx2 with bounded timeouts, in the event loop
  (never a blocking fetch). An identity provider we cannot reach gives 503, not 401: the client's
  token may be fine, and a 401 would send it to get another for nothing.

The token is never logged, echoed or passed upstream: a refusal's `reason` describes it ("expired",
"for another audience"), never quotes it. The SDK's `mcp.server.auth` has no JWT or introspection
code; docs/security.md says which of its pieces we use (the metadata model, its CORS wrapper) and why
we do not use its middleware (its challenges are not the ones the specs prescribe).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import anyio
import httpx2
from mcp.server.auth.routes import cors_middleware
from mcp.shared.auth import ProtectedResourceMetadata
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..definitions import is_scope_token
from ..errors import IdentityProviderUnavailable
from .http_scope import Caller

if TYPE_CHECKING:  # PyJWT (and the cryptography it loads) only once a token is verified: OAuth is opt-in
    import jwt

__all__ = [
    "ALGORITHMS",
    "INTROSPECTION_CACHE_SECONDS",
    "JWKS_MAX_AGE_SECONDS",
    "JWKS_REFETCH_SECONDS",
    "METADATA_PATH",
    "OAuthSettings",
    "Refused",
    "ResourceServer",
    "discovery_urls",
    "insufficient_scope",
    "metadata_path",
    "settings_problems",
]

logger = logging.getLogger("mcp_webtools.auth")

# Asymmetric algorithms only: with HMAC the verifier's key is the signer's, and a JWKS is public.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
LEEWAY_SECONDS = 30  # clock skew allowed on exp / nbf
JWKS_REFETCH_SECONDS = 60.0  # an unknown kid refetches the JWKS at most this often
JWKS_MAX_AGE_SECONDS = 3600.0  # and it is refetched anyway once this old, so a retired key stops verifying
INTROSPECTION_CACHE_SECONDS = 30.0  # how long an introspection answer stands (never past the token's exp)
INTROSPECTION_CACHE_ENTRIES = 10_000
FETCH_TIMEOUT = httpx2.Timeout(5.0)  # each request to the identity provider
MAX_ACCESS_TOKEN_BYTES = 16 * 1024  # Entra ID tokens with many groups run to several KiB
METADATA_PATH = "/.well-known/oauth-protected-resource"


@dataclass(frozen=True)
class OAuthSettings:
    """`serve --oauth-*` (or `$MCP_WEBTOOLS_OAUTH_*`): the authorization server we trust, and who we are."""

    issuer: str  # the authorization server's issuer identifier, exactly as its tokens' `iss`
    audience: str  # this server's resource URL (what clients connect to, e.g. https://mcp.example.com/mcp)
    scopes: tuple[str, ...] = ()  # scopes_supported, besides the tools' requiredScopes
    introspection_url: str | None = None  # RFC 7662, for opaque tokens
    client_id: str | None = None  # our credentials at the introspection endpoint
    client_secret: str | None = field(default=None, repr=False)  # a secret: never in a repr or log
    # Other `aud` values to accept, for identity providers that do not put the resource URL there
    # (Entra ID v2 tokens carry the API's application id).
    token_audiences: tuple[str, ...] = ()


def settings_problems(settings: OAuthSettings) -> list[str]:
    """What is wrong with `settings`, each naming the option and what to do; empty when usable."""
    problems = []
    for option, url in (
        ("--oauth-issuer", settings.issuer),
        ("--oauth-audience", settings.audience),
        ("--oauth-introspection-url", settings.introspection_url),
    ):
        if url is None:
            continue
        parts = urlsplit(url)
        loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
            problems.append(f"{option} must be an https:// URL (http:// only on loopback), not {url!r}")
        elif parts.query or parts.fragment:
            problems.append(f"{option} must not have a query or fragment: {url!r}")
    for scope in settings.scopes:
        if not is_scope_token(scope):
            problems.append(f"--oauth-scopes: {scope!r} is not a scope (printable ASCII, no space, quote or backslash)")
    if settings.introspection_url and not (settings.client_id and settings.client_secret):
        problems.append(
            "--oauth-introspection-url needs --oauth-client-id and a client secret "
            "($MCP_WEBTOOLS_OAUTH_CLIENT_SECRET): introspection endpoints authenticate their callers"
        )
    return problems


def metadata_path(resource_path: str) -> str:
    """RFC 9728 section 3.1: the metadata of `/mcp` is at `/.well-known/oauth-protected-resource/mcp`."""
    path = resource_path.rstrip("/")
    return METADATA_PATH + path


@dataclass(frozen=True)
class Refused:
    """Why a request is refused, and what to answer: 401 (no or bad token), 403 (scope), 503 (IdP down)."""

    status: int
    reason: str  # for the WARNING line and error_description: never the token
    error: str | None = None  # RFC 6750 error code; None when no token was presented (section 3.1)
    scope: str | None = None  # the scopes that would do, for the client to ask for

    def challenge(self, metadata_url: str) -> str:
        """The `WWW-Authenticate` value: `Bearer` with the RFC 6750 / RFC 9728 parameters that apply."""
        params = [] if self.error is None else [f'error="{self.error}"']
        if self.scope:
            params.append(f'scope="{self.scope}"')
        params.append(f'resource_metadata="{metadata_url}"')
        if self.error is not None:
            params.append(f'error_description="{_quotable(self.reason)}"')
        return "Bearer " + ", ".join(params)

    def response(self, metadata_url: str) -> Response:
        if self.status == 503:
            body = {"error": "temporarily_unavailable", "error_description": self.reason}
            return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})
        body = {"error": self.error or "unauthorized", "error_description": self.reason}
        return JSONResponse(body, status_code=self.status, headers={"WWW-Authenticate": self.challenge(metadata_url)})


def insufficient_scope(caller: Caller | None, required: Iterable[str]) -> Refused | None:
    """403 when an OAuth `caller` lacks any of `required` (a tool's or an endpoint's requiredScopes).

    A caller that is not OAuth (`scopes` None: a static token, stdio) is not limited by scopes.
    The challenge names every required scope, so the client can ask for them all at once (step-up).
    """
    needed = tuple(dict.fromkeys(required))
    if caller is None or caller.scopes is None or not needed or set(needed) <= caller.scopes:
        return None
    missing = " ".join(s for s in needed if s not in caller.scopes)
    return Refused(403, f"the token lacks the scope {missing}", "insufficient_scope", " ".join(needed))


class ResourceServer:
    """Verifies access tokens for one issuer and audience; serves our Protected Resource Metadata.

    One per HTTP app; `aclose()` closes its connections. `clock` (monotonic seconds) and `now`
    (epoch seconds) are injectable so that tests can step over the refetch interval and cache life.
    """

    def __init__(
        self,
        settings: OAuthSettings,
        *,
        http: httpx2.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], float] = time.time,
        scopes_in_use: Callable[[], Iterable[str]] = tuple,
    ) -> None:
        self.settings = settings
        self._http = http
        self._own_http = http is None
        self._clock = clock
        self._now = now
        self._scopes_in_use = scopes_in_use  # the tools' requiredScopes now (they change on reload)
        self._lock = anyio.Lock()
        self._discovered: dict[str, Any] | None = None
        self._keys: dict[str | None, jwt.PyJWK] | None = None
        self._fetched_at = 0.0
        self._refetched_at: float | None = None
        self._introspected: OrderedDict[str, tuple[float, Caller | Refused]] = OrderedDict()

    # --- what clients are told -------------------------------------------------------------------

    def resource(self, path: str | None = None) -> str:
        """The resource URL of `path` on this server (`/mcp/orders`); the configured audience for None."""
        if path is None:
            return self.settings.audience
        parts = urlsplit(self.settings.audience)
        return urlunsplit((parts.scheme, parts.netloc, path, "", ""))

    def metadata_url(self, path: str | None = None) -> str:
        """Where the metadata of the resource at `path` (default: the audience's) is, absolute."""
        parts = urlsplit(self.resource(path))
        return urlunsplit((parts.scheme, parts.netloc, metadata_path(parts.path), "", ""))

    def scopes_supported(self) -> list[str]:
        return list(dict.fromkeys((*self.settings.scopes, *sorted(set(self._scopes_in_use())))))

    def metadata(self, path: str | None = None) -> dict[str, Any]:
        """RFC 9728 metadata for the resource at `path`, through the SDK's model (it drops empty fields)."""
        document = ProtectedResourceMetadata(
            resource=self.resource(path),  # type: ignore[arg-type]  # pydantic parses the URL
            authorization_servers=[self.settings.issuer],  # type: ignore[list-item]
            scopes_supported=self.scopes_supported() or None,
            bearer_methods_supported=["header"],
        )
        shown = json.loads(document.model_dump_json(exclude_none=True))
        # pydantic normalises URLs (a trailing slash on a bare host); clients compare them as configured.
        shown["resource"] = self.resource(path)
        shown["authorization_servers"] = [self.settings.issuer]
        return shown

    def metadata_route(self, resource_path: str | None = None) -> Route:
        """The metadata route: at the root for None, else path-suffixed (`/mcp`, later `/mcp/<name>`).

        Open to anyone and to browsers (CORS `*`): it holds nothing secret, and a browser-based client
        must read it before it has a token.
        """
        path = METADATA_PATH if resource_path is None else metadata_path(resource_path)
        shown_for = resource_path

        async def serve(request: Request) -> Response:
            return JSONResponse(self.metadata(shown_for), headers={"Cache-Control": "public, max-age=300"})

        return Route(path, cors_middleware(serve, ["GET", "OPTIONS"]), methods=["GET", "OPTIONS"])

    def endpoint_metadata_route(self, configured: Callable[[str], bool]) -> Route:
        """The metadata of each endpoint (`/mcp/<name>`, a resource of its own), for the endpoints
        `configured` says exist now (they change on reload); 404 for any other name."""

        async def serve(request: Request) -> Response:
            name = request.path_params["endpoint"]
            if not configured(name):
                return JSONResponse({"error": "not_found", "error_description": f"no endpoint {name!r}"}, 404)
            metadata = self.metadata(f"/mcp/{name}")
            return JSONResponse(metadata, headers={"Cache-Control": "public, max-age=300"})

        path = metadata_path("/mcp/{endpoint}")
        return Route(path, cors_middleware(serve, ["GET", "OPTIONS"]), methods=["GET", "OPTIONS"])

    def unauthenticated(self, reason: str) -> Refused:
        """401 for a request that presented no bearer token: no error code (RFC 6750 section 3.1)."""
        return Refused(401, reason, None, " ".join(self.settings.scopes) or None)

    # --- verification ----------------------------------------------------------------------------

    async def authenticate(self, token: str, resource_path: str | None = None) -> Caller | Refused:
        """The caller `token` stands for, or why not. Never raises for anything a client sends.

        The token's audience must be this server's (`--oauth-audience`) or, for an endpoint, the
        endpoint's own resource URL (`resource_path`).
        """
        audiences = {_normal(audience) for audience in (self.settings.audience, *self.settings.token_audiences)}
        if resource_path is not None:
            audiences.add(_normal(self.resource(resource_path)))
        try:
            if len(token) > MAX_ACCESS_TOKEN_BYTES:
                return _invalid(f"the token is longer than {MAX_ACCESS_TOKEN_BYTES} bytes")
            if token.count(".") == 2:
                return await self._verify_jwt(token, audiences)
            if self.settings.introspection_url:
                return await self._introspect(token, audiences)
            return _invalid("the token is not a JWT, and no introspection endpoint is configured")
        except IdentityProviderUnavailable as unavailable:
            return Refused(503, f"the authorization server could not be reached: {unavailable}")

    async def _verify_jwt(self, token: str, audiences: set[str]) -> Caller | Refused:
        import jwt

        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return _invalid("the token is not a well-formed JWT")
        algorithm = header.get("alg")
        if algorithm not in ALGORITHMS:
            return _invalid(f"the token's algorithm {str(algorithm)[:20]!r} is not accepted (asymmetric only)")
        key = await self._key(header.get("kid"))
        if key is None:
            return _invalid("the token is signed with a key the issuer does not publish")
        if key.algorithm_name not in (algorithm, None) and getattr(key, "_jwk_data", {}).get("alg"):
            return _invalid("the token's algorithm does not match its key")
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                issuer=self.settings.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud"], "verify_aud": False},
            )
        except jwt.ExpiredSignatureError:
            return _invalid("the token has expired")
        except jwt.ImmatureSignatureError:
            return _invalid("the token is not valid yet (nbf)")
        except jwt.InvalidIssuerError:
            return _invalid("the token was issued by another issuer")
        except jwt.MissingRequiredClaimError as missing:
            return _invalid(f"the token has no {missing.claim} claim")
        except jwt.InvalidSignatureError:
            return _invalid("the token's signature does not verify")
        except jwt.PyJWTError:
            return _invalid("the token does not verify")
        return self._caller(claims, audiences)

    def _caller(self, claims: dict[str, Any], audiences: set[str]) -> Caller | Refused:
        aud = claims.get("aud")
        named = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if not audiences & {_normal(a) for a in named if isinstance(a, str)}:
            return _invalid("the token was issued for another audience")
        who = claims.get("sub") or claims.get("client_id") or claims.get("azp")
        if not isinstance(who, str) or not who:
            return _invalid("the token names no subject or client (sub, client_id)")
        return Caller(id=who, scopes=frozenset(_scopes(claims)))

    async def _key(self, kid: Any) -> jwt.PyJWK | None:
        """The issuer's key `kid`: from the cached JWKS, or after one refetch if it is unknown there."""
        if self._keys is None or self._clock() - self._fetched_at >= JWKS_MAX_AGE_SECONDS:
            async with self._lock:
                if self._keys is None or self._clock() - self._fetched_at >= JWKS_MAX_AGE_SECONDS:
                    self._keys = await self._fetch_keys()
        found = self._pick(kid)
        if found is not None:
            return found
        async with self._lock:
            found = self._pick(kid)  # another request may have refetched meanwhile
            now = self._clock()
            if found is None and (self._refetched_at is None or now - self._refetched_at >= JWKS_REFETCH_SECONDS):
                self._refetched_at = now
                self._keys = await self._fetch_keys()
                found = self._pick(kid)
        return found

    def _pick(self, kid: Any) -> jwt.PyJWK | None:
        keys = self._keys or {}
        if kid is None and len(keys) == 1:  # a JWKS of one key may leave kid out
            return next(iter(keys.values()))
        return keys.get(kid) if isinstance(kid, str) else None

    async def _fetch_keys(self) -> dict[str | None, jwt.PyJWK]:
        import jwt

        metadata = await self._discover()
        jwks_uri = metadata.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise IdentityProviderUnavailable(f"the issuer's metadata has no jwks_uri ({self.settings.issuer})")
        document = await self._get_json(jwks_uri)
        keys: dict[str | None, jwt.PyJWK] = {}
        for entry in document.get("keys", []) if isinstance(document.get("keys"), list) else []:
            if not isinstance(entry, dict) or entry.get("use", "sig") != "sig" or entry.get("kty") == "oct":
                continue
            try:
                keys[entry.get("kid")] = jwt.PyJWK(entry)
            except jwt.PyJWTError:
                continue  # a key type this PyJWT cannot use: tokens signed with it are refused
        logger.info("fetched the JWKS of %s: %d signing keys", self.settings.issuer, len(keys))
        self._fetched_at = self._clock()
        return keys

    async def _discover(self) -> dict[str, Any]:
        """The issuer's metadata: RFC 8414 first, then OpenID discovery (both placements of the path)."""
        if self._discovered is not None:
            return self._discovered
        issuer = self.settings.issuer
        failures = []
        for url in discovery_urls(issuer):
            try:
                document = await self._get_json(url)
            except IdentityProviderUnavailable as failure:
                failures.append(str(failure))
                continue
            if document.get("issuer") != issuer:
                failures.append(f"{url} names the issuer {str(document.get('issuer'))[:200]!r}, not {issuer!r}")
                continue
            self._discovered = document
            return document
        raise IdentityProviderUnavailable("; ".join(failures))

    async def _introspect(self, token: str, audiences: set[str]) -> Caller | Refused:
        digest = hashlib.sha256(token.encode("utf-8")).hexdigest()
        cached = self._introspected.get(digest)
        if cached is not None and cached[0] > self._clock():
            return cached[1]
        settings = self.settings
        assert settings.introspection_url and settings.client_id and settings.client_secret
        answer = await self._json(
            "POST",
            settings.introspection_url,
            data={"token": token, "token_type_hint": "access_token"},
            auth=httpx2.BasicAuth(settings.client_id, settings.client_secret),
        )
        verdict, lifetime = self._introspection_verdict(answer, audiences)
        self._introspected[digest] = (self._clock() + lifetime, verdict)
        while len(self._introspected) > INTROSPECTION_CACHE_ENTRIES:
            self._introspected.popitem(last=False)
        return verdict

    def _introspection_verdict(self, answer: dict[str, Any], audiences: set[str]) -> tuple[Caller | Refused, float]:
        if answer.get("active") is not True:
            return _invalid("the authorization server says the token is not active"), INTROSPECTION_CACHE_SECONDS
        now = self._now()
        exp, nbf = answer.get("exp"), answer.get("nbf")
        if isinstance(exp, int | float) and exp + LEEWAY_SECONDS < now:
            return _invalid("the token has expired"), INTROSPECTION_CACHE_SECONDS
        if isinstance(nbf, int | float) and nbf - LEEWAY_SECONDS > now:
            return _invalid("the token is not valid yet (nbf)"), 0.0
        if "iss" in answer and answer["iss"] != self.settings.issuer:
            return _invalid("the token was issued by another issuer"), INTROSPECTION_CACHE_SECONDS
        verdict = self._caller(answer, audiences)
        lifetime = INTROSPECTION_CACHE_SECONDS
        if isinstance(exp, int | float):
            lifetime = max(0.0, min(lifetime, exp - now))
        return verdict, lifetime

    async def _get_json(self, url: str) -> dict[str, Any]:
        return await self._json("GET", url)

    async def _json(self, method: str, url: str, **options: Any) -> dict[str, Any]:
        """The JSON object the identity provider answers at `url`; `IdentityProviderUnavailable` for anything else."""
        try:
            response = await self._client().request(method, url, headers={"Accept": "application/json"}, **options)
        except httpx2.HTTPError as failure:
            raise IdentityProviderUnavailable(f"{url}: {type(failure).__name__}") from None
        if response.status_code != 200:
            raise IdentityProviderUnavailable(f"{url} answered HTTP {response.status_code}")
        try:
            document = response.json()
        except ValueError:
            raise IdentityProviderUnavailable(f"{url} answered something that is not JSON") from None
        if not isinstance(document, dict):
            raise IdentityProviderUnavailable(f"{url} answered JSON that is not an object")
        return document

    def _client(self) -> httpx2.AsyncClient:
        if self._http is None:
            self._http = httpx2.AsyncClient(timeout=FETCH_TIMEOUT, follow_redirects=False)
        return self._http

    async def aclose(self) -> None:
        if self._own_http and self._http is not None:
            await self._http.aclose()
            self._http = None


def discovery_urls(issuer: str) -> list[str]:
    """Where the metadata of `issuer` may be, in the order the MCP authorization spec tries them:
    RFC 8414 (the well-known path before the issuer's path), then OpenID discovery after the path
    (Keycloak, Auth0, Entra ID), then OpenID discovery before it."""
    parts = urlsplit(issuer)
    path = parts.path.rstrip("/")
    candidates = [
        urlunsplit((parts.scheme, parts.netloc, "/.well-known/oauth-authorization-server" + path, "", "")),
        issuer.rstrip("/") + "/.well-known/openid-configuration",
        urlunsplit((parts.scheme, parts.netloc, "/.well-known/openid-configuration" + path, "", "")),
    ]
    return list(dict.fromkeys(candidates))


def _invalid(reason: str) -> Refused:
    return Refused(401, reason, "invalid_token")


def _scopes(claims: dict[str, Any]) -> list[str]:
    """`scope` (RFC 9068: space-separated), else `scp` (Entra ID, Okta: a list or a string)."""
    for name in ("scope", "scp"):
        value = claims.get(name)
        if isinstance(value, str):
            return value.split()
        if isinstance(value, list):
            return [s for s in value if isinstance(s, str)]
    return []


def _normal(url: str) -> str:
    """A resource URL compared as RFC 8707 intends: scheme and host in lower case, no trailing slash."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/"), parts.query, ""))


def _quotable(text: str) -> str:
    """`text` fit for a quoted-string in a header (RFC 6750 limits error_description to printable ASCII)."""
    return "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in text)
