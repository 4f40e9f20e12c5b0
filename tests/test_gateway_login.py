"""Login against the real running gateway: forged tokens, lockout, TOTP, two replicas, webhook replays.

Forged tokens are built by hand (PyJWT refuses to make most of them) and sent to ``/graphql``;
each must answer 401 ``UNAUTHENTICATED``, while the same construction with honest claims and the
provider's real key answers 200 — so the tests can fail. The embedded provider's key is shared
through Redis (``MINSHENG_IDP_KEY_FILE`` unset), which is also how the tests get hold of it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
import redis
from cryptography.hazmat.primitives import serialization

from auth.keys import SHARED_KEY_NAME, SigningKey
from auth.lockout import KEY_PREFIX
from tests.e2e import *  # noqa: F403 (the fixtures)
from tests.e2e import Graph, SandboxServer, gateway_settings, login, start_gateway

QUERY = "{ me { username roles } }"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segments(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload, _ = token.split(".")
    return (json.loads(base64.urlsafe_b64decode(header + "==")),
            json.loads(base64.urlsafe_b64decode(payload + "==")))


@pytest.fixture(scope="module")
def real_key(synced_redis_url: str, gateway: Graph) -> SigningKey:
    client = redis.Redis.from_url(synced_redis_url)
    pem = client.get(SHARED_KEY_NAME)
    client.close()
    assert pem is not None
    return SigningKey.from_pem(pem)


def claims_of(graph: Graph, username: str = "yutang", **changes: Any) -> dict[str, Any]:
    _, claims = segments(graph.as_user(username).token or "")
    claims.update(changes)
    return {key: value for key, value in claims.items() if value is not None}


def refused(graph: Graph, token: str) -> None:
    answer = graph.with_token(token).post(QUERY)
    assert answer.status_code == 401, answer.text
    assert answer.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert 'error="invalid_token"' in answer.headers["www-authenticate"]


def test_an_honest_token_is_accepted(graph: Graph, real_key: SigningKey) -> None:
    token = real_key.sign(claims_of(graph, roles=["street"]))
    assert graph.with_token(token).data(QUERY)["me"] == {"username": "yutang", "roles": ["street"]}


def test_alg_none_is_refused(graph: Graph, real_key: SigningKey) -> None:
    claims = claims_of(graph, roles=["district"])
    for alg in ("none", "None", "NONE"):
        header = {"alg": alg, "typ": "JWT", "kid": real_key.kid}
        refused(graph, f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}.")


def test_hs256_signed_with_the_public_key_is_refused(graph: Graph, real_key: SigningKey) -> None:
    """The RS/HS confusion: an HMAC "signed" with the public key the JWKS publishes."""
    jwks = httpx.get(f"{graph.base_url}/.well-known/jwks.json").json()
    assert jwks["keys"][0]["kid"] == real_key.kid
    public_pem = real_key.private_key.public_key().public_bytes(
        encoding=serialization.Encoding.PEM, format=serialization.PublicFormat.SubjectPublicKeyInfo)
    claims = claims_of(graph, roles=["district"])
    for secret in (public_pem, json.dumps(jwks["keys"][0]).encode()):
        header = {"alg": "HS256", "typ": "JWT", "kid": real_key.kid}
        signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
        signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        refused(graph, f"{signing_input}.{b64(signature)}")


def test_tampered_claims_are_refused(graph: Graph) -> None:
    token = graph.as_user("yutang").token or ""
    header, payload, signature = token.split(".")
    _, claims = segments(token)
    for change in ({"roles": ["district"]}, {"region_ids": ["440311"]}, {"sub": "user:center"}):
        forged = b64(json.dumps({**claims, **change}).encode())
        refused(graph, f"{header}.{forged}.{signature}")
    refused(graph, f"{header}.{payload}.{signature[:-4]}AAAA")


def test_expired_and_not_yet_valid_tokens_are_refused(graph: Graph, real_key: SigningKey) -> None:
    now = int(time.time())
    refused(graph, real_key.sign(claims_of(graph, iat=now - 7200, nbf=now - 7200, exp=now - 3600)))
    refused(graph, real_key.sign(claims_of(graph, iat=now + 3600, nbf=now + 3600, exp=now + 7200)))
    refused(graph, real_key.sign(claims_of(graph, exp=None)))  # exp is required


def test_wrong_audience_or_issuer_is_refused(graph: Graph, real_key: SigningKey) -> None:
    refused(graph, real_key.sign(claims_of(graph, aud="another-app")))
    refused(graph, real_key.sign(claims_of(graph, iss="https://idp.example.com")))
    refused(graph, real_key.sign(claims_of(graph, aud=None)))


def test_unknown_key_is_refused(graph: Graph) -> None:
    for algorithm in ("RS256", "ES256"):
        stranger = SigningKey.generate(algorithm)
        refused(graph, stranger.sign(claims_of(graph, roles=["district"])))


def test_malformed_authorization_is_refused(graph: Graph) -> None:
    for value in ("Basic Y2VudGVyOmRlbW8=", "Bearer", "Bearer a.b", "Bearer a b c", "Token abc"):
        answer = httpx.post(graph.url, json={"query": QUERY}, headers={"Authorization": value})
        assert answer.status_code == 401, value
        assert answer.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.fixture
def clean_locks(synced_redis_url: str) -> Iterator[None]:
    """Lockout counters the test leaves behind would lock the demo accounts for the rest of the run."""
    yield
    client = redis.Redis.from_url(synced_redis_url)
    for key in client.scan_iter(match=f"{KEY_PREFIX}:{{*"):
        client.delete(key)
    client.close()


def token_answer(graph: Graph, **form: str) -> httpx.Response:
    return httpx.post(f"{graph.base_url}/auth/token", data=form, timeout=30)


def test_lockout_after_repeated_failures(graph: Graph, clean_locks: None) -> None:
    for _ in range(5):
        answer = token_answer(graph, username="tianliao", password="wrong")
        assert answer.status_code == 400
        assert answer.json()["error"] == "invalid_grant"
    locked = token_answer(graph, username="tianliao", password="demo")  # the right password, too late
    assert locked.status_code == 400
    assert locked.json()["error"] == "invalid_grant"
    assert int(locked.headers["retry-after"]) > 0
    unknown = token_answer(graph, username="no-such-user", password="demo")
    assert unknown.json()["error_description"] == locked.json()["error_description"]  # nothing told apart
    assert token_answer(graph, username="yutang", password="demo").status_code == 200  # others unaffected


def test_totp_second_factor(graph: Graph, clean_locks: None) -> None:
    first = token_answer(graph, username="center2fa", password="demo")
    assert first.status_code == 400
    assert first.json().get("mfa_required") is True
    code = pyotp.TOTP("MINSHENGDEMOTOTPSECRETFORCENTER2").now()
    wrong = str((int(code) + 1) % 1_000_000).zfill(6)
    assert token_answer(graph, username="center2fa", password="demo", totp=wrong).status_code == 400
    token = login(graph.base_url, "center2fa", totp=code)
    _, claims = segments(token)
    assert claims["amr"] == ["pwd", "otp", "mfa"]
    assert graph.with_token(token).data(QUERY)["me"]["username"] == "center2fa"
    replayed = token_answer(graph, username="center2fa", password="demo", totp=code)  # a code works once
    assert replayed.status_code == 400


def test_logins_are_audited(graph: Graph) -> None:
    from tests.test_graph_rights import audit_lines

    token_answer(graph, username="xinfang", password="not-demo")
    assert audit_lines(graph, {"user": "xinfang", "action": "login:password", "outcome": "failed"})


def test_discovery_document(graph: Graph) -> None:
    document = httpx.get(f"{graph.base_url}/.well-known/openid-configuration").json()
    assert document["issuer"] == graph.base_url
    assert document["token_endpoint"] == f"{graph.base_url}/auth/token"
    _, claims = segments(graph.token or "")
    assert claims["iss"] == graph.base_url
    assert claims["aud"] == "minsheng"


def test_two_replicas_share_the_key_and_reject_replayed_webhooks(
        graph: Graph, sandbox: SandboxServer, synced_redis_url: str, e2e_dir: Path) -> None:
    """A second gateway on the same Redis: one login works on both; a webhook is accepted once."""
    from connectors.hotline12345 import sign_webhook
    from connectors.hotline12345.webhook import NONCE_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER

    settings = gateway_settings(synced_redis_url, e2e_dir / "channels.yaml", sandbox.url, sync=False,
                                public_url=graph.base_url)  # replicas behind one address share the issuer
    with start_gateway(settings) as replica:
        token = graph.as_user("yutang").token
        assert replica.with_token(token).data(QUERY)["me"]["username"] == "yutang"
        body = json.dumps({"event": "ping"}).encode()
        timestamp, nonce = str(int(time.time())), uuid.uuid4().hex
        headers = {TIMESTAMP_HEADER: timestamp, NONCE_HEADER: nonce, "content-type": "application/json",
                   SIGNATURE_HEADER: sign_webhook("sandbox-12345-webhook", timestamp, nonce, body)}
        first = httpx.post(f"{graph.base_url}/hooks/hotline12345", content=body, headers=headers)
        assert first.status_code == 202
        replayed = httpx.post(f"{replica.base_url}/hooks/hotline12345", content=body, headers=headers)
        assert replayed.status_code == 401  # the other replica's connector never saw the nonce: Redis did
        stale = str(int(time.time()) - 3600)
        old = {**headers, TIMESTAMP_HEADER: stale,
               SIGNATURE_HEADER: sign_webhook("sandbox-12345-webhook", stale, nonce + "x", body)}
        late = httpx.post(f"{replica.base_url}/hooks/hotline12345", content=body, headers=old)
        assert late.status_code == 401
