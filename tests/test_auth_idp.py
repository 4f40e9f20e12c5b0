"""The embedded identity provider over real HTTP, with its counters in a real Redis."""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
import redis.asyncio as aioredis
from argon2 import PasswordHasher
from starlette.applications import Starlette

from auth.accounts import AccountBook
from auth.audit import AuditLog
from auth.context import Authenticator
from auth.identity import IdentityHasher
from auth.idp import IdentityProvider, deferred_routes
from auth.keys import SigningKey, shared_signing_key
from auth.lockout import LockoutPolicy, LoginGuard
from auth.tokens import TokenValidator
from auth.viewer import Role
from casework.store import identity_digests
from sandbox.people import CITIZEN
from tests.servers import free_port, serve

AUDIENCE = "minsheng"
HASH_KEY = b"test-hash-key"
HASHER = IdentityHasher(HASH_KEY)
TOTP_SECRET = "MINSHENGDEMOTOTPSECRETFORCENTER2"


def cheap_accounts() -> AccountBook:
    """The demo accounts with cheap argon2 parameters, for tests that log in many times."""
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash("demo")
    book = AccountBook.load()
    return AccountBook([a.model_copy(update={"password_hash": cheap}) for a in book.users.values()],
                       list(book.clients.values()))


@dataclass
class Served:
    url: str
    idp: IdentityProvider

    async def token(self, **form: str) -> httpx.Response:
        return await self.post("/auth/token", data=form)

    async def post(self, path: str, **kwargs: Any) -> httpx.Response:
        async with httpx.AsyncClient(timeout=30) as client:
            return await client.post(f"{self.url}{path}", **kwargs)

    async def get(self, url: str) -> httpx.Response:
        async with httpx.AsyncClient(timeout=30) as client:
            return await client.get(url if url.startswith("http") else f"{self.url}{url}")


def provider_app(idp: IdentityProvider, redis: aioredis.Redis | None) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        if redis is not None:  # the client lives on the server's loop; close it there
            await redis.aclose()

    return Starlette(routes=idp.routes(), lifespan=lifespan)


@contextlib.contextmanager
def served_provider(redis_url: str | None, accounts: AccountBook | None = None,
                    **options: Any) -> Iterator[Served]:
    port = free_port()
    redis = aioredis.from_url(redis_url) if redis_url else None  # used only on the server's loop
    options.setdefault("signing_key", SigningKey.generate("EdDSA"))
    idp = IdentityProvider(f"http://127.0.0.1:{port}", AUDIENCE, accounts or AccountBook.load(), redis=redis,
                           hasher=HASHER, **options)
    with serve(provider_app(idp, redis), port=port) as url:
        yield Served(url, idp)


@pytest.fixture
def provider(redis_client: aioredis.Redis, redis_url: str) -> Iterator[Served]:
    """The provider with the demo accounts file as it is."""
    with served_provider(redis_url) as served:
        yield served


@pytest.fixture
def cheap_provider(redis_client: aioredis.Redis, redis_url: str) -> Iterator[Served]:
    """The demo accounts with cheap password hashes: for tests of many logins."""
    with served_provider(redis_url, cheap_accounts()) as served:
        yield served


def error_of(answer: httpx.Response) -> tuple[int, str]:
    """The status and RFC 6749 error code of a token endpoint answer."""
    return answer.status_code, answer.json().get("error", "")


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def viewer_of(served: Served, token: str) -> Any:
    validator = TokenValidator(served.idp.issuer, AUDIENCE, f"{served.url}/.well-known/jwks.json")
    try:
        authenticator = Authenticator(validator, hasher=HASHER)
        return await authenticator.authenticate({"Authorization": f"Bearer {token}"})
    finally:
        await validator.aclose()


async def test_discovery_and_jwks(provider: Served) -> None:
    discovery = (await provider.get("/.well-known/openid-configuration")).json()
    assert discovery["issuer"] == provider.idp.issuer
    assert discovery["token_endpoint"] == f"{provider.url}/auth/token"
    assert set(discovery["grant_types_supported"]) == {"password", "client_credentials"}
    (key,) = (await provider.get(discovery["jwks_uri"])).json()["keys"]
    assert key["kid"] == provider.idp.signing_key.kid
    assert key["use"] == "sig"
    assert not {"d", "p", "q"} & set(key)  # the public half only


@pytest.mark.parametrize(("username", "roles", "regions", "department"), [
    ("center", {Role.DISTRICT}, set(), None),
    ("yutang", {Role.STREET}, {"440311005"}, None),
    ("tianliao", {Role.COMMUNITY}, {"440311005002"}, None),
    ("labor", {Role.DEPARTMENT}, set(), "dept-labor"),
    ("xinfang", {Role.PETITION_STAFF}, set(), "dept-petition"),
])
async def test_demo_accounts_log_in(provider: Served, username: str, roles: set[Role], regions: set[str],
                                    department: str | None) -> None:
    answer = await provider.token(username=username, password="demo")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 3600)
    assert answer.headers["cache-control"] == "no-store"
    viewer = await viewer_of(provider, body["access_token"])
    assert (viewer.username, viewer.roles) == (username, roles)
    assert (viewer.region_ids, viewer.department_id) == (regions, department)
    assert viewer.claims["amr"] == ["pwd"]


async def test_the_citizen_carries_the_hashes_of_their_verified_identity(provider: Served) -> None:
    answer = await provider.token(grant_type="password", username="Citizen ", password="demo")
    viewer = await viewer_of(provider, answer.json()["access_token"])
    assert (viewer.roles, viewer.display_name) == ({Role.RESIDENT}, "陈晓明")
    # The sandbox world's R-CITIZEN: the same keyed hashes the store indexes his cases under.
    assert viewer.identity_hashes == set(identity_digests(HASH_KEY, CITIZEN.phone, CITIZEN.id_number))
    assert CITIZEN.phone not in str(viewer.claims)  # only keyed hashes travel in the token


async def test_wrong_and_unknown_answer_alike(cheap_provider: Served) -> None:
    wrong = await cheap_provider.token(username="center", password="not-demo")
    unknown = await cheap_provider.token(username="nobody-at-all", password="demo")
    assert error_of(wrong) == error_of(unknown) == (400, "invalid_grant")
    assert wrong.json() == unknown.json()
    assert "retry-after" not in wrong.headers


@pytest.mark.parametrize(("form", "error"), [
    ({"username": "center"}, "invalid_request"),
    ({"password": "demo"}, "invalid_request"),
    ({"grant_type": "authorization_code", "code": "x"}, "unsupported_grant_type"),
    ({"grant_type": "refresh_token", "refresh_token": "x"}, "unsupported_grant_type"),
])
async def test_bad_requests(cheap_provider: Served, form: dict[str, str], error: str) -> None:
    answer = await cheap_provider.token(**form)
    assert error_of(answer) == (400, error)
    assert "Traceback" not in answer.text


async def test_malformed_bodies(cheap_provider: Served) -> None:
    answers = [
        await cheap_provider.post("/auth/token", json={"username": "center", "password": "demo"}),
        await cheap_provider.post("/auth/token", content=b"username=center&username=labor&password=demo",
                                  headers=FORM),
        await cheap_provider.post("/auth/token", content=b"username=" + b"a" * 20000, headers=FORM),
        await cheap_provider.post("/auth/token", content=b"username=\xff\xfe&password=demo", headers=FORM),
    ]
    assert [error_of(answer) for answer in answers] == [(400, "invalid_request")] * 4
    assert (await cheap_provider.get("/auth/token")).status_code == 405


async def test_lockout_after_five_failures_with_retry_after(cheap_provider: Served,
                                                            redis_client: aioredis.Redis) -> None:
    for attempt in range(1, 6):
        answer = await cheap_provider.token(username="yutang", password=f"guess-{attempt}")
        assert error_of(answer) == (400, "invalid_grant")
        assert ("retry-after" in answer.headers) == (attempt == 5)
    locked = await cheap_provider.token(username="yutang", password="demo")  # even the right password
    assert error_of(locked) == (400, "invalid_grant")
    assert 0 < int(locked.headers["retry-after"]) <= 15 * 60
    others = await cheap_provider.token(username="center", password="demo")
    assert others.status_code == 200
    (lock,) = [key async for key in redis_client.scan_iter(match="minsheng:auth:{u:*}:locked")]
    assert 0 < await redis_client.ttl(lock) <= 15 * 60


async def test_unknown_names_lock_the_same_way(cheap_provider: Served) -> None:
    ghost = [await cheap_provider.token(username="ghost", password=f"p{i}") for i in range(6)]
    real = [await cheap_provider.token(username="labor", password=f"p{i}") for i in range(6)]
    assert [a.json() for a in ghost] == [a.json() for a in real]
    assert [("retry-after" in a.headers) for a in ghost] == [("retry-after" in a.headers) for a in real]
    assert "retry-after" in ghost[-1].headers


async def test_success_resets_the_failure_count(cheap_provider: Served) -> None:
    for _ in range(4):
        await cheap_provider.token(username="labor", password="wrong")
    assert (await cheap_provider.token(username="labor", password="demo")).status_code == 200
    for _ in range(4):
        answer = await cheap_provider.token(username="labor", password="wrong")
        assert "retry-after" not in answer.headers


async def test_address_budget_locks_a_password_sprayer(redis_client: aioredis.Redis) -> None:
    guard = LoginGuard(redis_client, LockoutPolicy(max_failures=5, max_ip_failures=3))
    assert await guard.failed("a", "203.0.113.9") is None
    assert await guard.failed("b", "203.0.113.9") is None
    assert await guard.failed("c", "203.0.113.9") is not None
    assert await guard.retry_after("d", "203.0.113.9") is not None   # any name from that address
    assert await guard.retry_after("d", "198.51.100.1") is None      # the name itself is not locked


async def test_totp_is_required_when_enabled(cheap_provider: Served) -> None:
    login = cheap_provider.token
    without = await login(username="center2fa", password="demo")
    assert error_of(without) == (400, "invalid_grant")
    assert without.json()["mfa_required"] is True
    wrong_password = await login(username="center2fa", password="nope")
    assert "mfa_required" not in wrong_password.json()  # only the right password learns TOTP is on
    code = pyotp.TOTP(TOTP_SECRET).now()
    bad = "000000" if code != "000000" else "111111"
    assert error_of(await login(username="center2fa", password="demo", totp=bad)) == (400, "invalid_grant")
    assert error_of(await login(username="center2fa", password="demo", totp="１２３４５６"))[0] == 400
    good = await login(username="center2fa", password="demo", otp=code)
    assert good.status_code == 200, good.text
    viewer = await viewer_of(cheap_provider, good.json()["access_token"])
    assert viewer.claims["amr"] == ["pwd", "otp", "mfa"]
    assert viewer.roles == {Role.DISTRICT}
    replayed = await login(username="center2fa", password="demo", totp=code)
    assert error_of(replayed) == (400, "invalid_grant")


async def test_client_credentials(provider: Served) -> None:
    form = await provider.token(grant_type="client_credentials", client_id="labor-system",
                                client_secret="labor-system-demo-secret")
    assert form.status_code == 200, form.text
    assert form.json()["scope"] == "cases:read cases:write"
    viewer = await viewer_of(provider, form.json()["access_token"])
    assert (viewer.roles, viewer.department_id) == ({Role.SERVICE}, "dept-labor")
    assert (viewer.scopes, viewer.subject) == ({"cases:read", "cases:write"}, "client:labor-system")
    basic = base64.b64encode(b"labor-system:labor-system-demo-secret").decode()
    narrowed = await provider.post("/auth/token", headers={"Authorization": f"Basic {basic}"},
                                   data={"grant_type": "client_credentials", "scope": "cases:read"})
    assert narrowed.status_code == 200
    assert narrowed.json()["scope"] == "cases:read"


async def test_client_credentials_errors(cheap_provider: Served) -> None:
    login = cheap_provider.token
    wrong = await login(grant_type="client_credentials", client_id="labor-system", client_secret="nope")
    assert error_of(wrong) == (401, "invalid_client")
    assert "www-authenticate" in wrong.headers
    unknown = await login(grant_type="client_credentials", client_id="ghost-system", client_secret="nope")
    assert unknown.json() == wrong.json()
    wider = await login(grant_type="client_credentials", client_id="labor-system",
                        client_secret="labor-system-demo-secret", scope="cases:read personal_data:read")
    assert error_of(wider) == (400, "invalid_scope")
    basic = await cheap_provider.post("/auth/token", data={"grant_type": "client_credentials"},
                                      headers={"Authorization": "Basic not-base64!"})
    assert error_of(basic) == (401, "invalid_client")
    assert basic.headers["www-authenticate"].startswith("Basic")
    # A person's password is no client secret, nor a client's secret a password.
    person = await login(grant_type="client_credentials", client_id="center", client_secret="demo")
    assert error_of(person) == (401, "invalid_client")
    client = await login(username="labor-system", password="labor-system-demo-secret")
    assert error_of(client) == (400, "invalid_grant")


async def test_login_attempts_are_audited(redis_client: aioredis.Redis, redis_url: str,
                                         tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.jsonl")
    with served_provider(redis_url, cheap_accounts(), audit=audit) as served:
        await served.token(username="center", password="demo")
        await served.token(username="center", password="wrong")
        await served.token(grant_type="client_credentials", client_id="ghost", client_secret="x")
    await audit.aclose()
    text = (tmp_path / "audit.jsonl").read_text(encoding="utf-8")
    entries = [json.loads(line) for line in text.splitlines()]
    assert [(e["user"], e["action"], e["outcome"], e.get("detail")) for e in entries] == [
        ("center", "login:password", "ok", None),
        ("center", "login:password", "failed", "invalid_grant"),
        ("ghost", "login:client_credentials", "failed", "invalid_client"),
    ]
    assert all(e["ip"] == "127.0.0.1" for e in entries)
    assert "wrong" not in text  # never the password


async def test_redis_down_is_a_503_not_a_crash(redis_url: str) -> None:
    with served_provider(f"redis://127.0.0.1:{free_port()}/0") as served:
        answer = await served.token(username="center", password="demo")
    assert error_of(answer) == (503, "temporarily_unavailable")


async def test_deferred_routes_find_the_provider_per_request(redis_client: aioredis.Redis) -> None:
    app = Starlette(routes=deferred_routes(lambda request: getattr(request.app.state, "idp", None)))
    with serve(app) as url:
        async with httpx.AsyncClient(base_url=url) as client:
            before = await client.post("/auth/token", data={"username": "center", "password": "demo"})
            assert error_of(before) == (503, "temporarily_unavailable")
            app.state.idp = IdentityProvider(url, AUDIENCE, signing_key=SigningKey.generate("EdDSA"))
            jwks = (await client.get("/.well-known/jwks.json")).json()
            assert jwks == app.state.idp.jwks()
            discovery = (await client.get("/.well-known/openid-configuration")).json()
            assert discovery["issuer"] == url


async def test_replicas_share_one_generated_key(redis_client: aioredis.Redis) -> None:
    first = await shared_signing_key(redis_client, "EdDSA")
    second = await shared_signing_key(redis_client, "EdDSA")
    assert first.kid == second.kid


def test_keys_load_from_pem(tmp_path: Path) -> None:
    key = SigningKey.generate("ES256")
    path = tmp_path / "idp.pem"
    path.write_bytes(key.to_pem())
    loaded = SigningKey.from_pem(path)
    assert (loaded.kid, loaded.algorithm) == (key.kid, "ES256")
