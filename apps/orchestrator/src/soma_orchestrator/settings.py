"""The orchestrator's settings (``SOMA_`` + upper-case name; maps as JSON; secrets only from mounted files).

Secret files: ``database_dsn`` (CloudNativePG's application secret ``uri``, password included, so the whole
DSN is a secret), ``model_api_key`` (the model endpoint's key, from Vault), ``openfga_store_id`` /
``openfga_model_id`` (Governance's bootstrap publishes them; files, as for the gateway).
"""
from __future__ import annotations

from pydantic import Field, SecretStr

from soma_service import ServiceSettings
from soma_service.audit import AuditSettings
from soma_service.openfga import OpenFgaSettings


class OrchestratorSettings(AuditSettings, OpenFgaSettings, ServiceSettings):
    service_name: str = "orchestrator"

    database_dsn: SecretStr = Field(description="libpq DSN or URI of the orchestrator's database (secret file)")
    database_pool_size: int = Field(default=10, ge=2)

    model_base_url: str = Field(pattern=r"^https?://", description="an OpenAI-compatible endpoint, e.g. http://vllm.soma-agents:8000/v1")
    model_api_key: SecretStr
    model_name: str = Field(min_length=1, description="the model served when a definition names none")
    model_aliases: dict[str, str] = Field(default_factory=dict, description='definition model name -> served name, JSON')
    model_timeout_seconds: float = Field(default=60.0, gt=0)

    step_timeout_seconds: float = Field(default=120.0, gt=0, description="wall clock per step attempt")
    step_max_attempts: int = Field(default=3, ge=1, le=10)
    step_backoff_seconds: float = Field(default=0.5, ge=0)
    recursion_limit: int = Field(default=50, ge=1, description="most steps a run may take")
    run_lease_seconds: float = Field(default=30.0, gt=0, description="a running run whose driver has not renewed its "
                                     "lease for this long is continued by another replica")
    tools_mcp_url: str | None = Field(default=None, pattern=r"^https?://",
                                      description="the tool service's MCP endpoint in the mesh, e.g. http://tools.soma-agents:8080/mcp: "
                                      "runs load their tools from it, registration checks tool names against it")
    tools_timeout_seconds: float = Field(default=60.0, gt=0, description="per MCP request to the tool service")
    available_tools: tuple[str, ...] = Field(default=(), description="tool names definitions may use (JSON list); "
                                             "ignored when tools_mcp_url is set")
