"""The gateway's settings (``SOMA_`` + upper-case name; lists and maps as JSON; secrets only from files).

OpenFGA (store and model IDs from secret files) and audit settings are the shared ones:
``soma_service.openfga.OpenFgaSettings`` and ``soma_service.audit.AuditSettings``.
"""
from __future__ import annotations

import os
import re

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from soma_service import ServiceSettings
from soma_service.audit import AuditSettings
from soma_service.openfga import OpenFgaSettings

from .ratelimit import Limit
from .routes import DEFAULT_ROUTES

_PASSWORD_IN_URL = re.compile(r"^(rediss?://[^/@:]*:)[^/@]*@")


class RateLimitSetting(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    rate: float = Field(gt=0, description="sustained requests per second")
    burst: int = Field(ge=1, description="requests allowed at once")

    def limit(self) -> Limit:
        return Limit(self.rate, self.burst)


class GatewaySettings(AuditSettings, OpenFgaSettings, ServiceSettings):
    service_name: str = "gateway"

    # identity's tokens
    jwt_issuer: str = Field(pattern=r"^https?://", description="the `iss` every token must carry")
    jwt_audience: str = Field(min_length=1, description="the `aud` every token must carry")
    jwks_url: str = Field(pattern=r"^https?://", description="identity's JWKS, e.g. http://identity.soma-agents:8080/.well-known/jwks.json")
    jwt_tenant_claim: str = "tenant"
    jwt_principal_claim: str = "principal_type"
    jwt_algorithms: tuple[str, ...] = ("RS256", "ES256", "EdDSA")
    jwt_leeway_seconds: float = Field(default=30, ge=0, le=300)
    jwks_ttl_seconds: float = Field(default=300, gt=0)
    jwks_refresh_interval_seconds: float = Field(default=10, ge=0, description="least time between two fetches caused by unknown kids")
    jwks_max_stale_seconds: float = Field(default=3600, gt=0, description="how long cached keys serve while identity is unreachable")

    # Redis
    redis_url: str = Field(pattern=r"^rediss?://", description="redis://host:6379/0 (no password in the URL: redis_password)")
    redis_password: SecretStr | None = None
    redis_timeout_seconds: float = Field(default=0.5, gt=0)
    redis_max_connections: int = Field(default=64, ge=1)
    rate_limit: RateLimitSetting = RateLimitSetting(rate=50, burst=100)
    rate_limit_tenants: dict[str, RateLimitSetting] = {}

    # backing services and audit
    upstreams: dict[str, str] = Field(description='route table upstream name -> base URL, JSON: {"orchestrator": "http://..."}')
    upstream_connect_timeout_seconds: float = Field(default=2.0, gt=0)
    upstream_timeout_seconds: float = Field(default=30.0, gt=0)
    upstream_stream_idle_timeout_seconds: float = Field(default=300.0, gt=0, description="for requests asking for a "
                                                        "stream (Accept: text/event-stream): longest wait between chunks")

    @classmethod
    def from_env(cls, environ=None, **overrides):
        """The base's reader, with a password found in ``SOMA_REDIS_URL`` masked first: the URL is refused
        (below) and the base quotes a refused value in its error, which must not carry the password."""
        environ = dict(os.environ if environ is None else environ)
        variable = cls.env_name("redis_url")
        if variable in environ:
            environ[variable] = _PASSWORD_IN_URL.sub(r"\1***@", environ[variable])
        return super().from_env(environ, **overrides)

    @field_validator("redis_url")
    @classmethod
    def _no_password_in_url(cls, value: str) -> str:
        if _PASSWORD_IN_URL.match(value):
            raise ValueError("carries a password: put it in the redis_password secret file instead")
        return value

    @field_validator("upstreams")
    @classmethod
    def _every_upstream_has_a_url(cls, value: dict[str, str]) -> dict[str, str]:
        missing = sorted({route.upstream for route in DEFAULT_ROUTES.routes} - set(value))
        if missing:
            raise ValueError(f"no URL for {missing} (the route table forwards to them)")
        bad = sorted(name for name, url in value.items() if not re.match(r"^https?://[^/]+", url))
        if bad:
            raise ValueError(f"not an http(s) URL for {bad}")
        return value
