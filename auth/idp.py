"""The embedded identity provider: the default run's OIDC issuer, so the same token path is exercised.

Endpoints (plain Starlette callables; :meth:`IdentityProvider.routes` lists them for the gateway)::

    POST /auth/token                        OAuth2 token endpoint (RFC 6749), form-encoded:
         grant_type=password (the default)  username, password, and totp (or otp) when the account has TOTP
         grant_type=client_credentials      client_id + client_secret (form or HTTP Basic), optional scope
         → 200 {access_token, token_type: "Bearer", expires_in[, scope]}
         → 400 {error: invalid_request | invalid_grant | unsupported_grant_type | invalid_scope, …}
         → 401 {error: invalid_client, …};  503 {error: temporarily_unavailable} when Redis is down
    GET  /.well-known/openid-configuration  discovery document
    GET  /.well-known/jwks.json             the public signing key(s)

Unknown name, wrong password and a locked name all answer the same ``invalid_grant``; a lock adds
``Retry-After``. Locks count failures per name tried (see :mod:`auth.lockout`), so they reveal
nothing about which names exist. The provider is also a :class:`~auth.tokens.KeySource`, so the
gateway's :class:`~auth.tokens.TokenValidator` reads its keys in process.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hmac
import logging
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote

import pyotp
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from auth.accounts import Account, AccountBook, ServiceClient, normalise_username, verify_secret
from auth.audit import AuditLog, Outcome
from auth.identity import IdentityHasher
from auth.keys import SigningKey
from auth.lockout import LockoutPolicy, LoginGuard

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["IdentityProvider", "TokenRequestError", "deferred_routes"]

log = logging.getLogger(__name__)

MAX_FORM_BYTES = 8 * 1024
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
FAILED_LOGIN = "用户名、密码或动态口令错误，或尝试过多已暂时锁定"


class TokenRequestError(Exception):
    """An RFC 6749 §5.2 error answer of the token endpoint."""

    def __init__(self, error: str, description: str, *, status: int = 400,
                 retry_after: int | None = None, **extra: Any) -> None:
        super().__init__(f"{error}: {description}")
        self.error, self.description, self.status = error, description, status
        self.retry_after, self.extra = retry_after, extra

    def response(self, *, basic_auth: bool = False) -> Response:
        headers = dict(NO_STORE)
        if self.retry_after is not None:
            headers["Retry-After"] = str(self.retry_after)
        if self.status == 401:
            scheme = "Basic" if basic_auth else "Bearer"
            headers["WWW-Authenticate"] = f'{scheme} realm="minsheng"'
        body = {"error": self.error, "error_description": self.description, **self.extra}
        return JSONResponse(body, status_code=self.status, headers=headers)


def _client_host(request: Request) -> str | None:
    return request.client.host if request.client else None


async def _read_form(request: Request) -> dict[str, str]:
    """The urlencoded form, size-capped; a repeated parameter is an error (RFC 6749 §3.2)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise TokenRequestError("invalid_request", "请以 application/x-www-form-urlencoded 提交")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise TokenRequestError("invalid_request", "请求过大")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        raise TokenRequestError("invalid_request", "表单无法解析") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise TokenRequestError("invalid_request", f"参数 {name} 重复")
        form[name] = value
    return form


def _basic_credentials(request: Request) -> tuple[str, str] | None:
    """``client_id``/``client_secret`` from ``Authorization: Basic`` (form-urlencoded per RFC 6749 §2.3.1)."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        client_id, sep, secret = base64.b64decode(value.strip(), validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        raise TokenRequestError("invalid_client", "客户端认证失败", status=401) from None
    if not sep:
        raise TokenRequestError("invalid_client", "客户端认证失败", status=401)
    return unquote(client_id.replace("+", " ")), unquote(secret.replace("+", " "))


class IdentityProvider:
    """Issues access tokens for the accounts of an :class:`AccountBook` and serves its keys."""

    def __init__(self, issuer: str, audience: str, accounts: AccountBook | None = None, *,
                 signing_key: SigningKey | None = None, redis: Redis | None = None,
                 hasher: IdentityHasher | None = None, audit: AuditLog | None = None, token_ttl: int = 3600,
                 lockout: LockoutPolicy | None = None, base_url: str | None = None,
                 client_ip: Callable[[Request], str | None] = _client_host,
                 clock: Callable[[], float] = time.time, max_concurrent_hashes: int = 4) -> None:
        self.issuer = issuer.rstrip("/")
        self.audience = audience
        self.accounts = accounts if accounts is not None else AccountBook.load()
        self.signing_key = signing_key or SigningKey.generate()
        self.hasher = hasher
        self.audit = audit
        self.token_ttl = token_ttl
        self.base_url = (base_url or issuer).rstrip("/")
        self.guard = LoginGuard(redis, lockout, clock=clock)
        self._client_ip = client_ip
        self._clock = clock
        # argon2 costs ~50 ms of CPU and 64 MiB: run it off the event loop, a few at a time.
        self._hashing = asyncio.Semaphore(max_concurrent_hashes)

    # -- keys and discovery -------------------------------------------------------------------

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.signing_key.public_jwk()]}

    async def fetch_jwks(self) -> dict[str, Any]:
        """:class:`~auth.tokens.KeySource`: the gateway validates our tokens without an HTTP round trip."""
        return self.jwks()

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "token_endpoint": f"{self.base_url}/auth/token",
            "jwks_uri": f"{self.base_url}/.well-known/jwks.json",
            "grant_types_supported": ["password", "client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "response_types_supported": ["token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [self.signing_key.algorithm],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "jti", "preferred_username",
                                 "name", "roles", "region_ids", "department_id", "identity_hashes", "amr",
                                 "scope"],
        }

    # -- issuing ------------------------------------------------------------------------------

    def _claims(self, sub: str, name: str, roles: frozenset[Any]) -> dict[str, Any]:
        now = int(self._clock())
        return {"iss": self.issuer, "aud": self.audience, "sub": sub, "iat": now, "nbf": now,
                "exp": now + self.token_ttl, "jti": uuid.uuid4().hex, "name": name,
                "roles": sorted(str(role) for role in roles)}

    def issue_for_user(self, account: Account, amr: tuple[str, ...] = ("pwd",)) -> str:
        """An access token for ``account`` after it authenticated with the methods ``amr`` (RFC 8176)."""
        claims = self._claims(account.sub, account.name, account.roles)
        claims.update(preferred_username=account.username, amr=list(amr), auth_time=claims["iat"])
        if account.region_ids:
            claims["region_ids"] = sorted(account.region_ids)
        if account.department_id:
            claims["department_id"] = account.department_id
        if account.identity is not None and self.hasher is not None:
            found = self.hasher.hashes(phone=account.identity.phone, id_number=account.identity.id_number)
            claims["identity_hashes"] = sorted(found)
        return self.signing_key.sign(claims)

    def issue_for_client(self, client: ServiceClient, scopes: frozenset[str]) -> str:
        """An access token for a department system (client credentials)."""
        claims = self._claims(client.sub, client.name, client.roles)
        claims.update(client_id=client.client_id, preferred_username=client.client_id,
                      scope=" ".join(sorted(scopes)))
        if client.department_id:
            claims["department_id"] = client.department_id
        if client.region_ids:
            claims["region_ids"] = sorted(client.region_ids)
        return self.signing_key.sign(claims)

    def _answer(self, token: str, scopes: frozenset[str] | None = None) -> Response:
        body: dict[str, Any] = {"access_token": token, "token_type": "Bearer", "expires_in": self.token_ttl}
        if scopes is not None:
            body["scope"] = " ".join(sorted(scopes))
        return JSONResponse(body, headers=NO_STORE)

    async def _verify(self, secret_hash: str | None, secret: str) -> bool:
        async with self._hashing:
            return await asyncio.to_thread(verify_secret, secret_hash, secret)

    # -- grants -------------------------------------------------------------------------------

    async def password_grant(self, form: dict[str, str], ip: str | None) -> Response:
        username, password = form.get("username", ""), form.get("password", "")
        if not username or not password or len(username) > 128 or len(password) > 1024:
            raise TokenRequestError("invalid_request", "请提供用户名和密码")
        name = normalise_username(username)
        retry = await self.guard.retry_after(name, ip)
        if retry is not None:
            raise TokenRequestError("invalid_grant", FAILED_LOGIN, retry_after=retry)
        account = self.accounts.user(username)
        if not await self._verify(account.password_hash if account else None, password) or account is None:
            raise TokenRequestError("invalid_grant", FAILED_LOGIN,
                                    retry_after=await self.guard.failed(name, ip))
        amr: tuple[str, ...] = ("pwd",)
        if account.totp_secret:
            await self._check_totp(account.totp_secret, form.get("totp") or form.get("otp") or "", name, ip)
            amr = ("pwd", "otp", "mfa")
        await self.guard.succeeded(name)
        log.info("login: %s (%s)", account.username, "+".join(amr))
        return self._answer(self.issue_for_user(account, amr))

    async def _check_totp(self, secret: str, code: str, name: str, ip: str | None) -> None:
        if not code:
            # Said only after the right password, so it discloses nothing a guesser could use.
            raise TokenRequestError("invalid_grant", "此账号已开启双因素认证，请提供动态口令 totp",
                                    mfa_required=True)
        totp, now, code = pyotp.TOTP(secret), self._clock(), code.strip()
        well_formed = code.isascii() and code.isdigit() and len(code) == totp.digits
        step = next((totp.timecode(now) + offset for offset in (0, -1, 1)
                     if well_formed and hmac.compare_digest(totp.at(now, counter_offset=offset), code)), None)
        # A code is good for one login only (RFC 6238 §5.2): a replayed code counts as a failure.
        if step is None or not await self.guard.use_once(f"totp:{name}:{step}", 3 * totp.interval):
            raise TokenRequestError("invalid_grant", FAILED_LOGIN,
                                    retry_after=await self.guard.failed(name, ip))

    async def client_credentials_grant(self, form: dict[str, str], basic: tuple[str, str] | None,
                                       ip: str | None) -> Response:
        if basic is not None and ("client_id" in form or "client_secret" in form):
            raise TokenRequestError("invalid_request", "客户端凭据只能用一种方式提交")
        client_id, secret = basic or (form.get("client_id", ""), form.get("client_secret", ""))
        if not client_id or not secret or len(client_id) > 128 or len(secret) > 1024:
            raise TokenRequestError("invalid_client", "客户端认证失败", status=401)
        retry = await self.guard.retry_after(client_id, ip, kind="c")
        if retry is not None:
            raise TokenRequestError("invalid_client", "客户端认证失败", status=401, retry_after=retry)
        client = self.accounts.client(client_id)
        if not await self._verify(client.secret_hash if client else None, secret) or client is None:
            raise TokenRequestError("invalid_client", "客户端认证失败", status=401,
                                    retry_after=await self.guard.failed(client_id, ip, kind="c"))
        requested = frozenset(form.get("scope", "").split())
        if not requested <= client.scopes:
            raise TokenRequestError("invalid_scope", "请求的权限超出此客户端的授权范围")
        scopes = requested or client.scopes
        await self.guard.succeeded(client_id, kind="c")
        return self._answer(self.issue_for_client(client, scopes), scopes)

    # -- endpoints ----------------------------------------------------------------------------

    async def token_endpoint(self, request: Request) -> Response:
        """``POST /auth/token``; every attempt is written to the audit log when one is given."""
        basic_used = request.headers.get("authorization", "").lower().startswith("basic ")
        ip = self._client_ip(request)
        form: dict[str, str] = {}
        try:
            form = await _read_form(request)
            response = await self._grant(form, request, ip)
        except TokenRequestError as exc:
            locked = " (locked)" if exc.retry_after is not None else ""
            self._audit_attempt(form, request, ip, Outcome.FAILED, exc.error + locked)
            return exc.response(basic_auth=basic_used)
        except RedisError as exc:
            log.error("token endpoint: Redis unavailable: %s", type(exc).__name__)
            return TokenRequestError("temporarily_unavailable", "认证服务暂不可用", status=503).response()
        self._audit_attempt(form, request, ip, Outcome.OK)
        return response

    async def _grant(self, form: dict[str, str], request: Request, ip: str | None) -> Response:
        grant = form.get("grant_type") or "password"
        if grant == "password":
            return await self.password_grant(form, ip)
        if grant == "client_credentials":
            return await self.client_credentials_grant(form, _basic_credentials(request), ip)
        raise TokenRequestError("unsupported_grant_type", "支持 password 与 client_credentials")

    def _audit_attempt(self, form: dict[str, str], request: Request, ip: str | None, outcome: str,
                       detail: str | None = None) -> None:
        if self.audit is None:
            return
        who = form.get("username") or form.get("client_id") or ""
        if not who:
            with contextlib.suppress(TokenRequestError):
                who = (_basic_credentials(request) or ("", ""))[0]
        grant = form.get("grant_type") or "password"
        self.audit.event(who[:64] or "?", f"login:{grant[:32]}", outcome=outcome, ip=ip, detail=detail)

    async def jwks_endpoint(self, request: Request) -> Response:
        """``GET /.well-known/jwks.json``."""
        return JSONResponse(self.jwks(), headers={"Cache-Control": "public, max-age=300"})

    async def discovery_endpoint(self, request: Request) -> Response:
        """``GET /.well-known/openid-configuration``."""
        return JSONResponse(self.discovery(), headers={"Cache-Control": "public, max-age=300"})

    def routes(self) -> list[Route]:
        """The provider's routes, for the gateway to add to its app."""
        return [Route("/auth/token", self.token_endpoint, methods=["POST"], name="auth_token"),
                Route("/.well-known/openid-configuration", self.discovery_endpoint, methods=["GET"],
                      name="openid_configuration"),
                Route("/.well-known/jwks.json", self.jwks_endpoint, methods=["GET"], name="jwks")]


def deferred_routes(lookup: Callable[[Request], IdentityProvider | None]) -> list[Route]:
    """The provider's routes for an app that builds the provider later (in its lifespan).

    ``lookup`` finds the provider per request (e.g. ``lambda r: r.app.state.idp``); until there is
    one the routes answer 503.
    """
    def endpoint(name: str) -> Callable[[Request], Any]:
        async def handle(request: Request) -> Response:
            idp = lookup(request)
            if idp is None:
                return TokenRequestError("temporarily_unavailable", "认证服务尚未就绪", status=503).response()
            handler: Callable[[Request], Any] = getattr(idp, name)
            response: Response = await handler(request)
            return response
        return handle

    return [Route("/auth/token", endpoint("token_endpoint"), methods=["POST"], name="auth_token"),
            Route("/.well-known/openid-configuration", endpoint("discovery_endpoint"), methods=["GET"],
                  name="openid_configuration"),
            Route("/.well-known/jwks.json", endpoint("jwks_endpoint"), methods=["GET"], name="jwks")]
