"""The gateway's settings (``SOMA_`` + upper-case name; lists and maps as JSON; secrets only from files).

OpenFGA's store and model IDs are typed as secrets so that they are read only from the files Vault and
External Secrets mount (Governance publishes them at ``outputs.openfga.ids_path``, keys ``store-id`` and
``model-id``): point ``SOMA_OPENFGA_STORE_ID_FILE`` / ``SOMA_OPENFGA_MODEL_ID_FILE`` at them, or mount them as
``<SOMA_SECRETS_DIR>/openfga_store_id`` and ``openfga_model_id``. They are not confidential, but an ID typed
into an environment variable by hand would outlive the model it names; the file follows Vault.
"""
from __future__ import annotations

import os
import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationInfo, field_validator

from soma_service import ServiceSettings

from .ratelimit import Limit
from .routes import DEFAULT_ROUTES

_PASSWORD_IN_URL = re.compile(r"^(rediss?://[^/@:]*:)[^/@]*@")
_ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")   # OpenFGA's store and model IDs are ULIDs


class RateLimitSetting(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    rate: float = Field(gt=0, description="sustained requests per second")
    burst: int = Field(ge=1, description="requests allowed at once")

    def limit(self) -> Limit:
        return Limit(self.rate, self.burst)


class GatewaySettings(ServiceSettings):
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

    # OpenFGA
    openfga_api_url: str = Field(pattern=r"^https?://", description="OpenFGA's HTTP API, e.g. http://openfga.soma-governance:8080")
    openfga_store_id: SecretStr
    openfga_model_id: SecretStr
    openfga_timeout_seconds: float = Field(default=1.0, gt=0)

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
    audit_sink: Literal["kafka", "log"] = "kafka"
    audit_kafka_bootstrap: str | None = Field(default=None, validate_default=True, description="Core's Kafka bootstrap servers, host:port[,host:port]")
    audit_topic: str = "platform.audit.v1"

    @classmethod
    def from_env(cls, environ=None, **overrides):
        """The base's reader, with a password found in ``SOMA_REDIS_URL`` masked first: the URL is refused
        (below) and the base quotes a refused value in its error, which must not carry the password."""
        environ = dict(os.environ if environ is None else environ)
        variable = cls.env_name("redis_url")
        if variable in environ:
            environ[variable] = _PASSWORD_IN_URL.sub(r"\1***@", environ[variable])
        return super().from_env(environ, **overrides)

    @field_validator("openfga_store_id", "openfga_model_id")
    @classmethod
    def _ulid(cls, value: SecretStr) -> SecretStr:
        if not _ULID.match(value.get_secret_value().strip()):
            raise ValueError("not an OpenFGA ID (a 26-character ULID)")
        return SecretStr(value.get_secret_value().strip())

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

    @field_validator("audit_kafka_bootstrap")
    @classmethod
    def _kafka_when_the_sink_is_kafka(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("audit_sink", "kafka") == "kafka" and not value:
            raise ValueError("required while audit_sink is kafka (the production sink)")
        return value
