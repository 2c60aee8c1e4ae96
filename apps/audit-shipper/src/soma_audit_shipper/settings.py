"""The shipper's settings (``SOMA_`` + upper-case name; maps as JSON; the audit sink's from ``AuditSettings``).

The Kubernetes API is reached as in-cluster clients do: ``https://kubernetes.default.svc`` with the pod's
ServiceAccount token (read again for every request: projected tokens rotate) and the cluster CA beside it.
"""
from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationInfo, field_validator, model_validator

from soma_service import ServiceSettings
from soma_service.audit import AuditSettings
from soma_service.tls import trust_only

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


class ShipperSettings(AuditSettings, ServiceSettings):
    service_name: str = "audit-shipper"

    constraint_rules: dict[str, str] = Field(
        default_factory=dict,
        description='Gatekeeper template folder -> gate rule ({"imagedigests": "digest-pinned-images", ...}); the '
                    'program writes it from the admission policies (components.governance.compliance.events.constraint_rules)')
    opa_max_body_bytes: int = Field(
        default=1 << 20, ge=1024, le=64 << 20,
        description="largest compressed decision-log batch accepted; keep it above OPA's "
                    "decision_logs.reporting.upload_size_limit_bytes (32 KiB by default)")
    opa_max_decoded_bytes: int = Field(default=32 << 20, ge=1024, le=512 << 20,
                                       description="largest batch once decompressed (a gzip bomb stops here)")
    kubernetes_events: bool = Field(default=True, description="list and watch core/v1 Events (Gatekeeper, Argo CD)")
    kubernetes_api_url: str = "https://kubernetes.default.svc"
    kubernetes_token_file: Path = SERVICE_ACCOUNT / "token"
    kubernetes_ca_file: Path | None = Field(
        default=SERVICE_ACCOUNT / "ca.crt", validate_default=True,
        description="PEM file of the cluster CA: the only trust for an https:// kubernetes_api_url, never the system store")
    events_namespace: str | None = Field(default=None, description="one namespace to watch; unset = every namespace")
    watch_timeout_seconds: int = Field(default=300, ge=1, le=3600,
                                       description="the API server ends each watch after this long; the shipper resumes it")
    list_page_size: int = Field(default=500, ge=1, le=5000)
    retry_min_seconds: float = Field(default=1.0, gt=0, le=60)
    retry_max_seconds: float = Field(default=60.0, gt=0, le=3600)
    sink_unready_seconds: float = Field(
        default=30.0, gt=0, le=3600,
        description="after a failed delivery, /readyz fails this long (or until a delivery succeeds); then the "
                    "pod takes traffic again so OPA's retried batches test the sink")

    @field_validator("kubernetes_ca_file")
    @classmethod
    def _the_cluster_ca_when_watching_over_https(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        """Loaded now, as the API client will load it, so a wrong mount stops the start naming the setting."""
        if not info.data.get("kubernetes_events") or not str(info.data.get("kubernetes_api_url", "")).startswith("https://"):
            return value
        if value is None:
            raise ValueError("required while kubernetes_api_url is https:// (the API server's only trust)")
        try:
            trust_only(value)
        except OSError as exc:  # ssl.SSLError is an OSError: unreadable, or no certificate in it
            raise ValueError(f"not a readable PEM CA certificate ({exc.strerror or exc})") from None
        return value

    @model_validator(mode="after")
    def _retries_ordered(self) -> "ShipperSettings":
        if self.retry_min_seconds > self.retry_max_seconds:
            raise ValueError("retry_min_seconds must not exceed retry_max_seconds")
        return self
