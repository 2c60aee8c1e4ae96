"""Bearer tokens: verified against identity's JWKS, turned into the principal the gateway authorizes.

The keys are cached (identity signs every token; fetching its JWKS per request would make identity the
gateway's bottleneck). Rotation works without a restart: a token whose ``kid`` the cache does not know makes
the cache refetch, at most once per ``refresh_interval`` so that a flood of forged ``kid`` values cannot turn
the gateway into a load generator against identity. When identity is unreachable the cache keeps using
what it has for ``max_stale`` seconds; with nothing usable it refuses (``KeysUnavailable`` -> 503): the
gateway never lets a token through that it could not verify.
"""
from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass
from typing import Callable, Mapping

import httpx
import jwt

# principal kinds the model knows (components/governance/openfga/model.fga) -> the audit contract's actor.type
from soma_service.audit import ACTOR_TYPES

_TENANT = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
# an OpenFGA object id (no ':', '#' or whitespace) that is also a valid audit actor.id
_SUBJECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~@/+=-]{0,199}$")


class TokenRejected(Exception):
    """The token proves nothing: 401 with ``reason`` as the code."""

    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


class KeysUnavailable(Exception):
    """Identity's keys cannot be had and none are cached: the gateway cannot verify anything (503)."""


@dataclass(frozen=True)
class Principal:
    subject: str
    kind: str  # user | service_account | agent | workflow (the model's principal types)
    tenant: str
    claims: Mapping

    @property
    def fga_user(self) -> str:
        return f"{self.kind}:{self.subject}"

    @property
    def actor_type(self) -> str:
        return ACTOR_TYPES[self.kind]


class JwksCache:
    """Identity's signing keys by ``kid``."""

    def __init__(self, url: str, client: httpx.AsyncClient, *, ttl: float = 300.0, refresh_interval: float = 10.0,
                 max_stale: float = 3600.0, timeout: float = 2.0, clock: Callable[[], float] = time.monotonic):
        self.url = url
        self.client = client
        self.ttl, self.refresh_interval, self.max_stale, self.timeout = ttl, refresh_interval, max_stale, timeout
        self.clock = clock
        self.keys: dict[str, jwt.PyJWK] = {}
        self.fetched_at: float | None = None    # last successful fetch
        self.attempted_at: float | None = None  # last attempt, successful or not
        self.fetches = 0
        self._lock = asyncio.Lock()

    def _fresh(self) -> bool:
        return self.fetched_at is not None and self.clock() - self.fetched_at < self.ttl

    def _usable(self) -> bool:
        return bool(self.keys) and self.fetched_at is not None and self.clock() - self.fetched_at < self.max_stale

    async def _refresh(self) -> bool:
        """Fetch the JWKS; False (keys unchanged) when identity cannot be reached or answers nonsense."""
        self.attempted_at = self.clock()
        self.fetches += 1
        try:
            answer = await self.client.get(self.url, timeout=self.timeout)
            answer.raise_for_status()
            document = answer.json()
            keys = {}
            for entry in document["keys"]:
                if entry.get("use", "sig") != "sig" or "kid" not in entry:
                    continue
                keys[entry["kid"]] = jwt.PyJWK(entry)
        except (httpx.HTTPError, ValueError, KeyError, TypeError, jwt.PyJWKError, json.JSONDecodeError):
            return False
        self.keys = keys
        self.fetched_at = self.clock()
        return True

    async def key(self, kid: str) -> jwt.PyJWK:
        async with self._lock:
            if not self._fresh():
                await self._refresh()
            if kid not in self.keys and self._may_refetch():
                await self._refresh()
            if not self._usable():
                raise KeysUnavailable(f"identity's JWKS at {self.url} cannot be fetched and no key is cached")
            if kid not in self.keys:
                raise TokenRejected("token_key_unknown", f"no key {kid!r} in identity's JWKS")
            return self.keys[kid]

    async def ready(self) -> bool:
        """For /readyz: refresh when due; True while a usable key set is held."""
        async with self._lock:
            if not self._fresh():
                await self._refresh()
            return self._usable()

    def _may_refetch(self) -> bool:
        return self.attempted_at is None or self.clock() - self.attempted_at >= self.refresh_interval


@dataclass(frozen=True)
class TokenRules:
    issuer: str
    audience: str
    tenant_claim: str = "tenant"
    kind_claim: str = "principal_type"
    algorithms: tuple[str, ...] = ("RS256", "ES256", "EdDSA")
    leeway: float = 30.0


_PYJWT_REASONS = (
    (jwt.ExpiredSignatureError, "token_expired"),
    (jwt.ImmatureSignatureError, "token_not_yet_valid"),
    (jwt.InvalidAudienceError, "token_audience_invalid"),
    (jwt.InvalidIssuerError, "token_issuer_invalid"),
    (jwt.MissingRequiredClaimError, "token_claim_missing"),
    (jwt.InvalidSignatureError, "token_signature_invalid"),
    (jwt.InvalidAlgorithmError, "token_algorithm_refused"),
    (jwt.DecodeError, "token_malformed"),
    (jwt.InvalidTokenError, "token_invalid"),
)


def bearer(authorization: str | None) -> str:
    if not authorization:
        raise TokenRejected("token_missing", "no Authorization header")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenRejected("token_malformed", "the Authorization header is not 'Bearer <token>'")
    return token.strip()


class TokenVerifier:
    def __init__(self, keys: JwksCache, rules: TokenRules):
        self.keys = keys
        self.rules = rules

    async def verify(self, authorization: str | None) -> Principal:
        token = bearer(authorization)
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError as exc:
            raise TokenRejected("token_malformed", f"the token's header cannot be read: {exc}") from None
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in self.rules.algorithms:
            raise TokenRejected("token_algorithm_refused", f"algorithm {alg!r} is not one of {list(self.rules.algorithms)}")
        if not isinstance(kid, str) or not kid:
            raise TokenRejected("token_malformed", "the token's header names no kid")
        key = await self.keys.key(kid)
        if key.algorithm_name != alg:
            raise TokenRejected("token_algorithm_refused", f"key {kid!r} is for {key.algorithm_name}, the token says {alg}")
        try:
            claims = jwt.decode(token, key, algorithms=[alg], audience=self.rules.audience, issuer=self.rules.issuer,
                                leeway=self.rules.leeway, options={"require": ["exp", "iss", "aud", "sub"]})
        except jwt.InvalidTokenError as exc:
            reason = next(code for kind, code in _PYJWT_REASONS if isinstance(exc, kind))
            raise TokenRejected(reason, str(exc)) from None
        return self._principal(claims)

    def _principal(self, claims: Mapping) -> Principal:
        tenant = claims.get(self.rules.tenant_claim)
        if not isinstance(tenant, str) or not _TENANT.match(tenant):
            raise TokenRejected("token_tenant_invalid", f"claim {self.rules.tenant_claim!r} is missing or not a tenant id (a DNS label)")
        kind = claims.get(self.rules.kind_claim)
        if kind not in ACTOR_TYPES:
            raise TokenRejected("token_principal_invalid", f"claim {self.rules.kind_claim!r} must be one of {sorted(ACTOR_TYPES)}")
        subject = claims["sub"]
        if not isinstance(subject, str) or not _SUBJECT.match(subject):
            raise TokenRejected("token_principal_invalid", "claim 'sub' is not a usable principal id")
        return Principal(subject=subject, kind=kind, tenant=tenant, claims=claims)
