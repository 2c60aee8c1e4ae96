"""identity's HTTP API: tokens (issue, refresh, exchange, revoke, introspect), the JWKS, and principals."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union

from fastapi import APIRouter, Header, Response
from pydantic import BaseModel, Field

from soma_service import ServiceError

from .federation import Federation
from .passwords import needs_rehash, hash_secret, verify_secret
from .settings import IdentitySettings
from .store import Conflict, RefreshRejected, Store
from .tokens import TokenService, unauthorized

Tenant = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", description="tenant name (DNS label)")]
Name = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\s/]+$")]
Scope = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9:_.\-*]{0,99}$")]
Audience = Annotated[str, Field(min_length=1, max_length=200)]
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ADMIN_SCOPE = "identity:admin"
INTROSPECT_SCOPE = "identity:introspect"


class PasswordGrant(BaseModel):
    grant_type: Literal["password"]
    tenant: Tenant
    username: Name
    password: str = Field(min_length=1, max_length=1024)
    audience: Audience
    scope: str | None = Field(default=None, description="space-separated; default: every scope the user has")


class ClientCredentialsGrant(BaseModel):
    grant_type: Literal["client_credentials"]
    client_id: uuid.UUID
    client_secret: str = Field(min_length=1, max_length=1024)
    audience: Audience
    scope: str | None = None


class RefreshTokenGrant(BaseModel):
    grant_type: Literal["refresh_token"]
    refresh_token: str = Field(min_length=1, max_length=200)
    scope: str | None = Field(default=None, description="narrower than the original grant, or the same")


class TokenExchangeGrant(BaseModel):
    grant_type: Literal[TOKEN_EXCHANGE]  # type: ignore[valid-type]
    subject_token: str = Field(min_length=1, max_length=16384, description="an ID token of the federated provider")
    subject_token_type: Literal[ID_TOKEN_TYPE]  # type: ignore[valid-type]
    audience: Audience
    scope: str | None = None


TokenRequest = Annotated[Union[PasswordGrant, ClientCredentialsGrant, RefreshTokenGrant, TokenExchangeGrant],
                         Field(discriminator="grant_type")]


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int
    scope: str
    refresh_token: str | None = None


class TokenBody(BaseModel):
    token: str = Field(min_length=1, max_length=16384)


class NewUser(BaseModel):
    tenant: Tenant
    username: Name
    password: str = Field(min_length=1, max_length=1024)
    scopes: list[Scope] = []


class NewServiceAccount(BaseModel):
    tenant: Tenant
    name: Name
    kind: Literal["agent", "workflow"]
    scopes: list[Scope] = []


class PrincipalOut(BaseModel):
    id: str
    tenant: str
    kind: str
    name: str
    scopes: list[str]
    disabled: bool
    federated_from: str | None = None


class ServiceAccountCreated(PrincipalOut):
    client_id: str
    client_secret: str = Field(description="shown once; only its Argon2id hash is stored")


@dataclass
class Runtime:
    """What the routes use, connected at start-up (the routes exist before, so the OpenAPI document does too)."""

    tokens: TokenService | None = None
    store: Store | None = None
    federation: Federation | None = None


def build_router(settings: IdentitySettings, runtime: Runtime) -> APIRouter:
    router = APIRouter()

    def caller(authorization: str | None, scope: str) -> dict[str, Any]:
        if not authorization or not authorization.lower().startswith("bearer "):
            raise unauthorized("missing_token", "Authorization: Bearer <access token> is required")
        claims = runtime.tokens.verify(authorization[7:].strip())
        if scope not in claims.get("scope", "").split():
            raise ServiceError(403, "insufficient_scope", f"the token lacks the scope {scope}")
        return claims

    def same_tenant(claims: dict[str, Any], tenant: str) -> None:
        if claims["tenant"] != tenant:
            raise ServiceError(403, "tenant_mismatch", f"tenant: the caller belongs to {claims['tenant']!r}, not {tenant!r}")

    @router.get("/.well-known/jwks.json", tags=["keys"], summary="Public keys of every signing key version in use")
    def jwks(response: Response) -> dict[str, list[dict[str, str]]]:
        response.headers["Cache-Control"] = f"public, max-age={settings.jwks_cache_seconds}"
        return runtime.tokens.signer.jwks()

    @router.get("/.well-known/openid-configuration", tags=["keys"], summary="OIDC discovery (issuer, JWKS, token endpoint)")
    def discovery() -> dict[str, Any]:
        return {"issuer": settings.issuer, "jwks_uri": f"{settings.issuer}/.well-known/jwks.json",
                "token_endpoint": f"{settings.issuer}/v1/tokens",
                "revocation_endpoint": f"{settings.issuer}/v1/tokens/revoke",
                "introspection_endpoint": f"{settings.issuer}/v1/tokens/introspect",
                "id_token_signing_alg_values_supported": [settings.signing_algorithm],
                "grant_types_supported": ["password", "client_credentials", "refresh_token"]
                + ([TOKEN_EXCHANGE] if settings.federation_enabled else [])}

    @router.post("/v1/tokens", tags=["tokens"], response_model=TokenResponse, response_model_exclude_none=True,
                 summary="Issue an access token (users: password or federated ID token; service accounts: client credentials)",
                 responses={400: {}, 401: {}, 403: {}})
    def issue(grant: TokenRequest) -> dict[str, Any]:
        if isinstance(grant, PasswordGrant):
            runtime.tokens.check_audience(grant.audience)
            user = runtime.store.principal_by_name(grant.tenant, grant.username)
            stored = user.password_hash if user and user.kind == "user" else None
            if not verify_secret(stored, grant.password):
                raise unauthorized("invalid_credentials", "tenant, username or password is wrong")
            if needs_rehash(stored):
                runtime.store.update_password_hash(user.id, hash_secret(grant.password))
            scopes = runtime.tokens.grant_scopes(user, grant.scope)
            refresh = None if user.disabled else runtime.store.issue_refresh_token(
                user, grant.audience, scopes, settings.refresh_token_ttl_seconds)
            return runtime.tokens.issue(user, grant.audience, scopes, refresh)
        if isinstance(grant, ClientCredentialsGrant):
            runtime.tokens.check_audience(grant.audience)
            account = runtime.store.principal(grant.client_id)
            stored = account.password_hash if account and account.kind != "user" else None
            if not verify_secret(stored, grant.client_secret):
                raise unauthorized("invalid_client", "client_id or client_secret is wrong")
            return runtime.tokens.issue(account, grant.audience, runtime.tokens.grant_scopes(account, grant.scope))
        if isinstance(grant, RefreshTokenGrant):
            try:
                found, new_refresh = runtime.store.redeem_refresh_token(grant.refresh_token, settings.refresh_token_ttl_seconds)
            except RefreshRejected as rejected:
                raise unauthorized("invalid_grant", rejected.reason) from None
            scopes = runtime.tokens.grant_scopes(found.principal, grant.scope, ceiling=found.scopes)
            return runtime.tokens.issue(found.principal, found.audience, scopes, new_refresh)
        if runtime.federation is None:
            raise ServiceError(400, "unsupported_grant_type", "grant_type: federation is not configured")
        runtime.tokens.check_audience(grant.audience)
        user = runtime.federation.local_user(runtime.federation.verify(grant.subject_token))
        scopes = runtime.tokens.grant_scopes(user, grant.scope)
        refresh = None if user.disabled else runtime.store.issue_refresh_token(
            user, grant.audience, scopes, settings.refresh_token_ttl_seconds)
        return runtime.tokens.issue(user, grant.audience, scopes, refresh)

    @router.post("/v1/tokens/revoke", tags=["tokens"], summary="Revoke a refresh token (its whole login) or an access token",
                 responses={400: {}, 401: {}})
    def revoke(body: TokenBody) -> dict[str, bool]:
        if body.token.count(".") == 2:
            runtime.tokens.revoke(body.token)
            return {"revoked": True}
        # RFC 7009: an unknown refresh token is not an error (nothing to revoke, nothing revealed)
        return {"revoked": runtime.store.revoke_refresh_token(body.token)}

    @router.post("/v1/tokens/introspect", tags=["tokens"], summary=f"Is this access token live? (needs {INTROSPECT_SCOPE})",
                 responses={400: {}, 401: {}, 403: {}})
    def introspect(body: TokenBody, authorization: Annotated[str | None, Header()] = None) -> dict[str, Any]:
        caller(authorization, INTROSPECT_SCOPE)
        try:
            return {"active": True, **runtime.tokens.verify(body.token)}
        except ServiceError as rejected:
            return {"active": False, "reason": rejected.message}

    @router.post("/v1/users", tags=["principals"], status_code=201, response_model=PrincipalOut,
                 summary=f"Create a user (needs {ADMIN_SCOPE} in the same tenant)",
                 responses={400: {}, 401: {}, 403: {}, 409: {}})
    def create_user(body: NewUser, authorization: Annotated[str | None, Header()] = None) -> dict[str, Any]:
        same_tenant(caller(authorization, ADMIN_SCOPE), body.tenant)
        if len(body.password) < settings.password_min_length:
            raise ServiceError(400, "invalid_request",
                               f"body.password: at least {settings.password_min_length} characters are required")
        try:
            return runtime.store.create_principal(body.tenant, "user", body.username, body.password, body.scopes).public()
        except Conflict as conflict:
            raise ServiceError(409, "already_exists", str(conflict)) from None

    @router.post("/v1/service-accounts", tags=["principals"], status_code=201, response_model=ServiceAccountCreated,
                 summary=f"Create an agent or workflow service account (needs {ADMIN_SCOPE})",
                 responses={400: {}, 401: {}, 403: {}, 409: {}})
    def create_service_account(body: NewServiceAccount,
                               authorization: Annotated[str | None, Header()] = None) -> dict[str, Any]:
        same_tenant(caller(authorization, ADMIN_SCOPE), body.tenant)
        secret = secrets.token_urlsafe(32)
        try:
            account = runtime.store.create_principal(body.tenant, body.kind, body.name, secret, body.scopes)
        except Conflict as conflict:
            raise ServiceError(409, "already_exists", str(conflict)) from None
        return {**account.public(), "client_id": str(account.id), "client_secret": secret}

    def tenant_principal(principal_id: uuid.UUID, claims: dict[str, Any]):
        principal = runtime.store.principal(principal_id)
        if principal is None or principal.tenant != claims["tenant"]:  # another tenant's: as if absent
            raise ServiceError(404, "not_found", f"principal_id: no principal {principal_id} in tenant {claims['tenant']!r}")
        return principal

    @router.get("/v1/principals/{principal_id}", tags=["principals"], response_model=PrincipalOut,
                responses={400: {}, 401: {}, 403: {}, 404: {}})
    def get_principal(principal_id: uuid.UUID, authorization: Annotated[str | None, Header()] = None) -> dict[str, Any]:
        return tenant_principal(principal_id, caller(authorization, ADMIN_SCOPE)).public()

    @router.post("/v1/principals/{principal_id}/disable", tags=["principals"], response_model=PrincipalOut,
                 summary="Disable a principal: no new tokens, every refresh token revoked",
                 responses={400: {}, 401: {}, 403: {}, 404: {}})
    def disable(principal_id: uuid.UUID, authorization: Annotated[str | None, Header()] = None) -> dict[str, Any]:
        tenant_principal(principal_id, caller(authorization, ADMIN_SCOPE))
        runtime.store.disable(principal_id)
        return runtime.store.principal(principal_id).public()

    return router
