"""identity's settings: the base's, plus the issuer, Vault transit, PostgreSQL and federation."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from soma_service import ServiceSettings
from soma_service.tls import trust_only

# Envoy's jwt_authn filter keeps a remote JWKS for 5 minutes when no cacheDuration is set: a new key version
# must be published at least that long before tokens are signed with it.
ENVOY_DEFAULT_JWKS_CACHE_SECONDS = 300


class IdentitySettings(ServiceSettings):
    service_name: str = "identity"
    issuer: str = Field(min_length=1, description="the iss claim; the edge's mesh.edge.jwt.issuer")
    allowed_audiences: list[str] = Field(min_length=1, description="audiences a token may be issued for (JSON list)")
    access_token_ttl_seconds: int = Field(default=600, ge=1, le=3600)
    refresh_token_ttl_seconds: int = Field(default=8 * 3600, ge=60)
    clock_skew_seconds: int = Field(default=30, ge=0)

    vault_addr: str = Field(min_length=1, description="Vault's URL; https:// needs vault_ca_file")
    vault_ca_file: Path | None = Field(
        default=None, description="PEM file of the CA Vault's certificate chains to (the platform CA); the only "
        "trust for an https:// vault_addr, never the system store")
    vault_token: SecretStr | None = Field(default=None, description="a Vault token file (dev, tests)")
    vault_kubernetes_role: str | None = Field(default=None, description="Kubernetes-auth role, in the cluster")
    vault_kubernetes_mount: str = "kubernetes"
    vault_service_account_token_path: Path = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
    vault_transit_mount: str = "transit"
    signing_key_name: str = "identity-jwt"
    signing_algorithm: Literal["ES256", "RS256"] = "ES256"
    key_publish_delay_seconds: int = Field(
        default=ENVOY_DEFAULT_JWKS_CACHE_SECONDS, ge=0,
        description="a new key version is in the JWKS this long before it signs (JWKS caches must see it first)")
    jwks_cache_seconds: int = Field(default=30, ge=0, description="how long identity caches the key versions it read")

    database_dsn: str = Field(min_length=1, description="libpq connection string without the password")
    database_password: SecretStr | None = None
    database_pool_size: int = Field(default=10, ge=1)
    password_min_length: int = Field(default=12, ge=8)

    federation_issuer: str | None = None
    federation_jwks_url: str | None = None
    federation_audience: str | None = Field(default=None, description="identity's client id at the external provider")
    federation_tenant: str | None = Field(default=None, description="tenant of every federated user")
    federation_tenant_claim: str | None = Field(default=None, description="or: the ID token claim naming the tenant")
    federation_scopes: list[str] = Field(default_factory=list, description="scopes of a newly federated user")

    @field_validator("vault_addr")
    @classmethod
    def _an_http_or_https_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("an http:// or https:// URL with a host, e.g. https://vault.soma-secrets.svc:8200")
        return value

    @field_validator("vault_ca_file")
    @classmethod
    def _a_readable_pem_certificate(cls, value: Path | None) -> Path | None:
        """Parsed now, so a wrong mount or an empty Secret stops the service at start with the file's name, not at
        the first signature."""
        if value is None:
            return value
        try:
            trust_only(value)  # loaded as the TLS client loads it
        except ssl.SSLError:
            raise ValueError(f"{value} holds no PEM certificate (expected the CA certificate, ca.crt)") from None
        except OSError as exc:
            raise ValueError(f"cannot read the CA certificate file {value}: {exc.strerror or exc}") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "IdentitySettings":
        problems = []
        tls = urlsplit(self.vault_addr).scheme == "https"
        if tls and self.vault_ca_file is None:
            problems.append("vault_addr is https:// but vault_ca_file (SOMA_VAULT_CA_FILE) is not set: identity trusts "
                            "only the CA certificate file given there, never the system store nor no verification")
        if not tls and self.vault_ca_file is not None:
            problems.append("vault_ca_file is set but vault_addr is not https://: the CA would verify nothing")
        if (self.vault_token is None) == (self.vault_kubernetes_role is None):
            problems.append("set exactly one of vault_token (a secret file) and vault_kubernetes_role")
        federation = [self.federation_issuer, self.federation_jwks_url, self.federation_audience]
        if any(federation) and not all(federation):
            problems.append("federation needs federation_issuer, federation_jwks_url and federation_audience together")
        if self.federation_issuer and (self.federation_tenant is None) == (self.federation_tenant_claim is None):
            problems.append("federation needs exactly one of federation_tenant and federation_tenant_claim")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def vault_verify(self) -> str | bool:
        """requests' ``verify`` for the Vault client: the CA file itself (only that CA, hostname checked) over TLS."""
        return str(self.vault_ca_file) if self.vault_ca_file is not None else True

    @property
    def federation_enabled(self) -> bool:
        return self.federation_issuer is not None

    @property
    def key_grace_seconds(self) -> int:
        """How long a key version must stay verifiable after it last signed: the longest token life plus skew."""
        return self.access_token_ttl_seconds + self.clock_skew_seconds
