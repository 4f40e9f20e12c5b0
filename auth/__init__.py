"""Login and rights: token validation, the embedded identity provider, roles, masking, audit.

Floor 1 of the layout: imports nothing of the project but itself. The modules, in the order a
request meets them::

    tokens      TokenValidator: bearer JWT → verified claims (pinned algorithms, JWKS with caching)
    context     Authenticator: Authorization header / connection_init payload → Viewer
    viewer      Viewer, Role: who is asking
    rights      case_scope, can_view_case(_cluster), can_act, can_unmask, disclosure: the policy
    masking     mask_party, mask_case_address, mask_*: personal data as the viewer may see it
    audit       AuditLog: every unmasked read and every write, JSON lines with rotation
    idp         IdentityProvider: the embedded OIDC issuer (POST /auth/token, JWKS, discovery)
    accounts    AccountBook: the provider's accounts (auth/data/accounts.yaml: the demo accounts)
    lockout     LoginGuard: failure counters and locks (Redis)
    keys        SigningKey: the provider's signing key, JWK thumbprints
    identity    IdentityHasher: keyed hashes of verified phone numbers and ID numbers
    replay      ReplayGuard: webhook replay protection across replicas
    errors      AuthError tree: InvalidToken(reason), KeysUnavailable, ReplayRejected
"""

from auth.accounts import Account, AccountBook, ServiceClient
from auth.audit import AuditEntry, AuditLog, Outcome
from auth.context import Authenticator, authenticate, bearer_token, viewer_from_claims
from auth.errors import AuthError, InvalidToken, KeysUnavailable, ReplayRejected, TokenReason
from auth.identity import IdentityHasher
from auth.idp import IdentityProvider
from auth.keys import SigningKey
from auth.lockout import LockoutPolicy, LoginGuard
from auth.masking import (
    PartyView,
    mask_address,
    mask_case_address,
    mask_id_number,
    mask_name,
    mask_party,
    mask_phone,
    mask_text,
)
from auth.replay import ReplayGuard, request_fingerprint
from auth.rights import (
    Action,
    CaseFacts,
    Disclosure,
    Scope,
    can_act,
    can_dispatch,
    can_unmask,
    can_view_case,
    can_view_cluster,
    can_view_stats,
    case_scope,
    disclosure,
    is_operator,
)
from auth.tokens import HttpJwksSource, JwksCache, KeySource, StaticJwksSource, TokenValidator
from auth.viewer import Role, Viewer

__all__ = [
    "Account", "AccountBook", "Action", "AuditEntry", "AuditLog", "AuthError", "Authenticator", "CaseFacts",
    "Disclosure", "HttpJwksSource", "IdentityHasher", "IdentityProvider", "InvalidToken", "JwksCache",
    "KeySource", "KeysUnavailable", "LockoutPolicy", "LoginGuard", "Outcome", "PartyView", "ReplayGuard",
    "ReplayRejected", "Role", "Scope", "ServiceClient", "SigningKey", "StaticJwksSource", "TokenReason",
    "TokenValidator", "Viewer", "authenticate", "bearer_token", "can_act", "can_dispatch", "can_unmask",
    "can_view_case", "can_view_cluster", "can_view_stats", "case_scope", "disclosure", "is_operator",
    "mask_address", "mask_case_address", "mask_id_number", "mask_name", "mask_party", "mask_phone",
    "mask_text", "request_fingerprint", "viewer_from_claims",
]
