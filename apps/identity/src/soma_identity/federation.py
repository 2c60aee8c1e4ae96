"""Federation with an external OIDC provider: an ID token from it is exchanged for identity's own tokens.

The ID token is verified against the provider's JWKS (fetched from ``federation_jwks_url`` and cached by
PyJWT's ``PyJWKClient``; an unknown ``kid`` triggers one refetch, so the provider's rotations work), its
issuer, its audience (identity's client id there) and its expiry. The provider's ``(iss, sub)`` is mapped to one
local user, created on first sign-in in the configured tenant with ``federation_scopes``; a disabled local
user stays disabled whatever the provider says.
"""

from __future__ import annotations

import re
from typing import Any

import jwt

from soma_service import ServiceError

from .settings import IdentitySettings
from .store import Conflict, Principal, Store

TENANT_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class Federation:
    def __init__(self, settings: IdentitySettings, store: Store):
        self.settings = settings
        self.store = store
        self.jwks = jwt.PyJWKClient(settings.federation_jwks_url, cache_keys=True, lifespan=300, timeout=5)

    def verify(self, id_token: str) -> dict[str, Any]:
        try:
            key = self.jwks.get_signing_key_from_jwt(id_token)
            return jwt.decode(id_token, key.key, algorithms=["RS256", "ES256"],
                              audience=self.settings.federation_audience, issuer=self.settings.federation_issuer,
                              leeway=self.settings.clock_skew_seconds, options={"require": ["exp", "iat", "sub"]})
        except jwt.PyJWKClientConnectionError as exc:
            raise ServiceError(503, "federation_unavailable", f"the external provider's keys cannot be fetched: {exc}") from None
        except jwt.PyJWTError as exc:
            raise ServiceError(401, "invalid_subject_token", f"subject_token rejected: {exc}") from None

    def local_user(self, claims: dict[str, Any]) -> Principal:
        issuer, subject = claims["iss"], claims["sub"]
        existing = self.store.principal_by_external(issuer, subject)
        if existing is not None:
            return existing
        tenant = self.settings.federation_tenant or claims.get(self.settings.federation_tenant_claim or "")
        if not isinstance(tenant, str) or not TENANT_NAME.match(tenant):
            raise ServiceError(403, "tenant_unknown",
                               f"subject_token: claim {self.settings.federation_tenant_claim!r} names no valid tenant")
        name = claims.get("preferred_username") or claims.get("email") or subject
        try:
            return self.store.create_principal(tenant, "user", f"{name}", None, list(self.settings.federation_scopes),
                                               external=(issuer, subject))
        except Conflict:
            # a local account already has the name: keep them apart, the provider's subject is unique
            return self.store.create_principal(tenant, "user", f"{name}@{issuer}#{subject}", None,
                                               list(self.settings.federation_scopes), external=(issuer, subject))
