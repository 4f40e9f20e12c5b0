"""From headers and connection_init payloads to viewers; webhook replay protection."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis.asyncio as aioredis
from starlette.datastructures import Headers

from auth.context import Authenticator, authenticate, bearer_token, viewer_from_claims
from auth.errors import InvalidToken, ReplayRejected, TokenReason
from auth.identity import IdentityHasher, normalise_id_number, normalise_phone
from auth.keys import SigningKey
from auth.replay import ReplayGuard, request_fingerprint
from auth.tokens import StaticJwksSource, TokenValidator
from auth.viewer import Role
from casework.store import identity_digests

ISSUER = "https://idp.minsheng.test"
KEY = SigningKey.generate("EdDSA")
HASHER = IdentityHasher(b"context-test-key")


def token(**changes: Any) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": "minsheng", "sub": "user:yutang", "iat": now, "exp": now + 600,
              "preferred_username": "yutang", "name": "玉塘街道办事处", "roles": ["street"],
              "region_ids": ["440311005"]}
    claims.update(changes)
    return KEY.sign({k: v for k, v in claims.items() if v is not None})


@pytest.fixture
def authenticator() -> Authenticator:
    validator = TokenValidator(ISSUER, "minsheng", StaticJwksSource({"keys": [KEY.public_jwk()]}))
    return Authenticator(validator, hasher=HASHER)


async def test_no_credentials_is_anonymous(authenticator: Authenticator) -> None:
    viewer = await authenticator.authenticate({})
    assert not viewer.authenticated
    assert viewer.roles == frozenset()
    assert not (await authenticator.authenticate_connection(None)).authenticated
    assert not (await authenticator.authenticate_connection({})).authenticated


async def test_a_bearer_token_makes_the_viewer(authenticator: Authenticator) -> None:
    viewer = await authenticator.authenticate(Headers({"authorization": f"bearer {token()}"}))
    assert viewer.authenticated
    assert (viewer.username, viewer.display_name) == ("yutang", "玉塘街道办事处")
    assert (viewer.roles, viewer.region_ids) == (frozenset({Role.STREET}), frozenset({"440311005"}))
    same = await authenticate({"Authorization": f"Bearer {token()}"}, authenticator.validator)
    assert same.roles == viewer.roles


@pytest.mark.parametrize("value", ["Basic Y2VudGVyOmRlbW8=", "Bearer", "Bearer ", "Bearer a b", "Token x",
                                   ""])
async def test_other_authorization_values_are_refused(authenticator: Authenticator, value: str) -> None:
    with pytest.raises(InvalidToken) as caught:
        await authenticator.authenticate({"Authorization": value})
    assert caught.value.reason is TokenReason.MALFORMED
    assert caught.value.www_authenticate().startswith('Bearer error="invalid_token"')


async def test_a_repeated_authorization_header_is_refused(authenticator: Authenticator) -> None:
    headers = Headers(raw=[(b"authorization", f"Bearer {token()}".encode()),
                           (b"authorization", f"Bearer {token(roles=['district'])}".encode())])
    with pytest.raises(InvalidToken):
        await authenticator.authenticate(headers)


async def test_a_bad_token_is_never_anonymous(authenticator: Authenticator) -> None:
    with pytest.raises(InvalidToken) as caught:
        await authenticator.authenticate({"Authorization": f"Bearer {token(exp=int(time.time()) - 3600)}"})
    assert caught.value.reason is TokenReason.EXPIRED


@pytest.mark.parametrize("payload", [
    {"Authorization": "Bearer {t}"}, {"authorization": "Bearer {t}"}, {"access_token": "{t}"},
])
async def test_websocket_connection_init_payloads(authenticator: Authenticator,
                                                  payload: dict[str, str]) -> None:
    filled = {key: value.format(t=token()) for key, value in payload.items()}
    viewer = await authenticator.authenticate_connection(filled)
    assert viewer.roles == {Role.STREET}


@pytest.mark.parametrize("payload", [{"Authorization": 42}, {"access_token": ["x"]}, {"Authorization": "x"}])
async def test_bad_connection_init_payloads(authenticator: Authenticator, payload: dict[str, Any]) -> None:
    with pytest.raises(InvalidToken):
        await authenticator.authenticate_connection(payload)


def test_open_and_unknown_roles_never_come_from_a_token() -> None:
    viewer = viewer_from_claims({"sub": "x", "roles": ["open", "superuser", "district"]})
    assert viewer.roles == {Role.DISTRICT}
    assert not viewer_from_claims({"sub": "x", "roles": ["open"]}).authenticated


@pytest.mark.parametrize("claims", [
    {"sub": "x", "roles": "district"}, {"sub": "x", "roles": [1]}, {"sub": "x", "region_ids": "440311005"},
    {"sub": "x", "department_id": ["dept-labor"]}, {"sub": "x", "identity_hashes": "phone:1"},
])
def test_claims_of_the_wrong_shape_are_refused(claims: dict[str, Any]) -> None:
    with pytest.raises(InvalidToken) as caught:
        viewer_from_claims(claims)
    assert caught.value.reason is TokenReason.INVALID_CLAIM


def test_an_external_providers_verified_phone_identifies_a_resident() -> None:
    claims = {"sub": "x", "roles": ["resident"], "phone_number": "+86 138 2756 1234"}
    assert viewer_from_claims({**claims, "phone_number_verified": True}, hasher=HASHER).identity_hashes == {
        HASHER.phone("13827561234")}
    assert viewer_from_claims(claims, hasher=HASHER).identity_hashes == frozenset()  # unverified: no match


@pytest.mark.parametrize(("phone", "id_number"), [
    ("13728835126", "440306198807124315"), ("+86 137-2883-5126", "44030619880712431x"),
    ("0086 13728835126", " 440306198807124315 "), ("０７５５-２６８８１２３４", None),
    (None, "440306880712431"),
])
def test_hashes_equal_the_stores_identity_index(phone: str | None, id_number: str | None) -> None:
    key = b"shared-hash-key"
    assert IdentityHasher(key).hashes(phone=phone, id_number=id_number) == set(
        identity_digests(key, phone, id_number))


def test_identity_normalisation() -> None:
    assert normalise_phone("+86 138-2756-1234") == normalise_phone("008613827561234") == "13827561234"
    assert normalise_phone("１３８２７５６１２３４") == "13827561234"
    assert normalise_id_number("44031119900315234x") == "44031119900315234X"
    assert normalise_id_number("  ") is None
    assert HASHER.id_number("44031119900315234x") == HASHER.id_number("44031119900315234X")
    assert HASHER.phone("13827561234") != IdentityHasher(b"another-key").phone("13827561234")
    assert bearer_token(None) is None


async def test_replays_are_refused_across_replicas(redis_client: aioredis.Redis) -> None:
    replica_a, replica_b = ReplayGuard(redis_client), ReplayGuard(redis_client)
    headers = {"X-12345-Signature": "abc", "X-12345-Nonce": "n1", "X-12345-Timestamp": "1700000000"}
    names = ("X-12345-Signature", "X-12345-Nonce", "X-12345-Timestamp")
    fingerprint = request_fingerprint(b'{"gdbh":"1"}', headers, names)
    await replica_a.accept("hotline12345", fingerprint)
    with pytest.raises(ReplayRejected):
        await replica_b.accept("hotline12345", fingerprint)
    await replica_b.accept("mayor", fingerprint)  # per channel
    other = request_fingerprint(b'{"gdbh":"1"}', {**headers, "X-12345-Nonce": "n2"}, names)
    assert other != fingerprint
    await replica_b.accept("hotline12345", other)


async def test_replay_guard_in_memory_and_timestamps() -> None:
    now = [1_700_000_000.0]
    guard = ReplayGuard(window=300, clock=lambda: now[0])
    guard.check_timestamp(now[0] - 299)
    with pytest.raises(ReplayRejected):
        guard.check_timestamp(now[0] - 301)
    await guard.accept("court", "f1")
    with pytest.raises(ReplayRejected):
        await guard.accept("court", "f1")
    now[0] += 601
    await guard.accept("court", "f1")  # forgotten after two windows


def test_the_public_names_of_auth() -> None:
    import auth

    assert sorted(auth.__all__) == [
        "Account", "AccountBook", "Action", "AuditEntry", "AuditLog", "AuthError", "Authenticator",
        "CaseFacts", "Disclosure", "HttpJwksSource", "IdentityHasher", "IdentityProvider", "InvalidToken",
        "JwksCache", "KeySource", "KeysUnavailable", "LockoutPolicy", "LoginGuard", "Outcome", "PartyView",
        "ReplayGuard", "ReplayRejected", "Role", "Scope", "ServiceClient", "SigningKey", "StaticJwksSource",
        "TokenReason", "TokenValidator", "Viewer", "authenticate", "bearer_token", "can_act",
        "can_dispatch", "can_unmask", "can_view_case", "can_view_cluster", "can_view_stats", "case_scope",
        "disclosure", "is_operator", "mask_address", "mask_case_address", "mask_id_number", "mask_name",
        "mask_party", "mask_phone", "mask_text", "request_fingerprint", "viewer_from_claims"]
    assert all(hasattr(auth, name) for name in auth.__all__)
