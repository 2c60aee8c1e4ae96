"""Access tokens: what goes in them, issuing them through the transit signer, and checking them.

Claims: ``iss``, ``sub`` (the principal's id), ``aud`` (one audience from ``allowed_audiences``), ``iat``/``nbf``/
``exp`` (short-lived: ``access_token_ttl_seconds``), ``jti`` (revocation), ``tenant`` (the edge compares it
with the request's tenant), ``scope`` (space-separated, what the edge's policy reads), ``principal_type``
(``user``, ``agent`` or ``workflow``) and ``name``.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone
from typing import Any

import jwt
from jwt import PyJWK

from soma_service import ServiceError

from .keys import TransitSigner
from .settings import IdentitySettings
from .store import Principal, Store


def unauthorized(code: str, message: str) -> ServiceError:
    return ServiceError(401, code, message, headers={"WWW-Authenticate": f'Bearer error="{code}"'})


class TokenService:
    def __init__(self, settings: IdentitySettings, signer: TransitSigner, store: Store, clock=time.time):
        self.settings = settings
        self.signer = signer
        self.store = store
        self.clock = clock

    def check_audience(self, audience: str) -> None:
        if audience not in self.settings.allowed_audiences:
            raise ServiceError(400, "invalid_request", f"audience: {audience!r} is not one of "
                                                        f"{', '.join(self.settings.allowed_audiences)}")

    def grant_scopes(self, principal: Principal, requested: str | None,
                     ceiling: tuple[str, ...] | None = None) -> tuple[str, ...]:
        """The requested scopes (default: all the principal may have), refused if any is not allowed."""
        allowed = set(principal.scopes) if ceiling is None else set(principal.scopes) & set(ceiling)
        wanted = set(requested.split()) if requested else allowed
        refused = sorted(wanted - allowed)
        if refused:
            raise ServiceError(403, "scope_not_allowed", f"scope: not allowed for this principal: {' '.join(refused)}")
        return tuple(sorted(wanted))

    def issue(self, principal: Principal, audience: str, scopes: tuple[str, ...],
              refresh_token: str | None = None) -> dict[str, Any]:
        if principal.disabled:
            raise ServiceError(403, "principal_disabled", f"principal {principal.id} is disabled")
        now = int(self.clock())
        ttl = self.settings.access_token_ttl_seconds
        claims = {
            "iss": self.settings.issuer, "sub": str(principal.id), "aud": audience,
            "iat": now, "nbf": now, "exp": now + ttl, "jti": uuid.uuid4().hex,
            "tenant": principal.tenant, "scope": " ".join(scopes),
            "principal_type": principal.kind, "name": principal.name,
        }
        body: dict[str, Any] = {"access_token": self.signer.sign(claims), "token_type": "Bearer",
                                "expires_in": ttl, "scope": claims["scope"]}
        if refresh_token:
            body["refresh_token"] = refresh_token
        return body

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a live access token issued here; 401 otherwise (bad signature, retired key, expired,
        wrong issuer or audience, revoked)."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise unauthorized("invalid_token", f"not a JWT: {exc}") from None
        keys = {jwk["kid"]: jwk for jwk in self.signer.jwks()["keys"]}
        if header.get("kid") not in keys:
            self.signer.invalidate()  # maybe a version published since the cache was filled
            keys = {jwk["kid"]: jwk for jwk in self.signer.jwks()["keys"]}
        jwk = keys.get(header.get("kid"))
        if jwk is None:
            raise unauthorized("invalid_token", f"signing key {header.get('kid')!r} is unknown or retired")
        try:
            claims = jwt.decode(token, PyJWK(jwk).key, algorithms=[self.signer.algorithm],
                                audience=self.settings.allowed_audiences, issuer=self.settings.issuer,
                                leeway=self.settings.clock_skew_seconds,
                                options={"require": ["exp", "iat", "sub", "jti", "tenant"]})
        except jwt.PyJWTError as exc:
            raise unauthorized("invalid_token", f"token rejected: {exc}") from None
        if self.store.access_token_revoked(claims["jti"]):
            raise unauthorized("invalid_token", "token revoked")
        return claims

    def revoke(self, token: str) -> None:
        claims = self.verify(token)
        self.store.revoke_access_token(claims["jti"], datetime.fromtimestamp(claims["exp"], timezone.utc))
