"""The tool service's settings (``SOMA_`` + upper-case name; lists and maps as JSON; secrets only from files).

OpenFGA's store and model IDs are read from the files Governance publishes through Vault, as in the
gateway (``SOMA_OPENFGA_STORE_ID_FILE`` / ``SOMA_OPENFGA_MODEL_ID_FILE`` or ``<SOMA_SECRETS_DIR>/openfga_*``).
"""
from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, SecretStr, ValidationInfo, field_validator

from soma_service import ServiceSettings

from .sources import McpSource

_ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
_REFERENCE = re.compile(r"^[A-Za-z_][\w.]*(:[A-Za-z_][\w.]*)?$")


class ToolsSettings(ServiceSettings):
    service_name: str = "tools"

    openfga_api_url: str = Field(pattern=r"^https?://", description="OpenFGA's HTTP API, e.g. http://openfga.soma-governance:8080")
    openfga_store_id: SecretStr
    openfga_model_id: SecretStr
    openfga_timeout_seconds: float = Field(default=1.0, gt=0)

    tool_modules: list[str] = Field(default_factory=list, description='modules whose TOOLS list is registered: ["acme_tools"] or ["acme_tools:EXTRA"]')
    mcp_sources: list[McpSource] = Field(default_factory=list, description='external MCP servers: [{"prefix": "docs", "url": "http://docs-mcp:8000/mcp"}]')
    memory_providers: dict[str, str] = Field(default_factory=dict, description='RAG providers: {"llamaindex": "module:factory"}')
    memory_search_timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    sandbox_network_namespace: bool = Field(default=True, description="run tools without declared network in a new network namespace when the kernel allows it")
    sandbox_max_concurrent: int = Field(default=8, ge=1, le=256, description="tool processes at once; size the pod's memory limit for this many times the tools' memory_bytes")
    sandbox_warm: bool = Field(default=True, description="keep one tool process started ahead of the next call")

    audit_sink: Literal["kafka", "log"] = "kafka"
    audit_kafka_bootstrap: str | None = Field(default=None, validate_default=True, description="Core's Kafka bootstrap servers")
    audit_topic: str = "platform.audit.v1"

    @field_validator("openfga_store_id", "openfga_model_id")
    @classmethod
    def _ulid(cls, value: SecretStr) -> SecretStr:
        if not _ULID.match(value.get_secret_value().strip()):
            raise ValueError("not an OpenFGA ID (a 26-character ULID)")
        return SecretStr(value.get_secret_value().strip())

    @field_validator("tool_modules")
    @classmethod
    def _references(cls, value: list[str]) -> list[str]:
        bad = [item for item in value if not _REFERENCE.match(item)]
        if bad:
            raise ValueError(f"not module or module:attribute: {bad}")
        return value

    @field_validator("mcp_sources")
    @classmethod
    def _unique_prefixes(cls, value: list[McpSource]) -> list[McpSource]:
        prefixes = [source.prefix for source in value]
        if len(prefixes) != len(set(prefixes)):
            raise ValueError(f"prefixes must be unique: {prefixes}")
        return value

    @field_validator("audit_kafka_bootstrap")
    @classmethod
    def _kafka_when_the_sink_is_kafka(cls, value: str | None, info: ValidationInfo) -> str | None:
        if info.data.get("audit_sink", "kafka") == "kafka" and not value:
            raise ValueError("required while audit_sink is kafka (the production sink)")
        return value
