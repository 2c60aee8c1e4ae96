"""The tool service's settings (``SOMA_`` + upper-case name; lists and maps as JSON; secrets only from files).

OpenFGA's store and model IDs are read from the files Governance publishes through Vault, as in the
gateway (``SOMA_OPENFGA_STORE_ID_FILE`` / ``SOMA_OPENFGA_MODEL_ID_FILE`` or ``<SOMA_SECRETS_DIR>/openfga_*``).
"""
from __future__ import annotations

import re

from pydantic import Field, field_validator

from soma_service import ServiceSettings
from soma_service.audit import AuditSettings
from soma_service.openfga import OpenFgaSettings

from .sources import McpSource

_REFERENCE = re.compile(r"^[A-Za-z_][\w.]*(:[A-Za-z_][\w.]*)?$")


class ToolsSettings(AuditSettings, OpenFgaSettings, ServiceSettings):
    service_name: str = "tools"

    tool_modules: list[str] = Field(default_factory=list, description='modules whose TOOLS list is registered: ["acme_tools"] or ["acme_tools:EXTRA"]')
    mcp_sources: list[McpSource] = Field(default_factory=list, description='external MCP servers: [{"prefix": "docs", "url": "http://docs-mcp:8000/mcp"}]')
    memory_providers: dict[str, str] = Field(default_factory=dict, description='RAG providers: {"llamaindex": "module:factory"}')
    memory_search_timeout_seconds: float = Field(default=10.0, gt=0, le=600)
    sandbox_network_namespace: bool = Field(default=True, description="run tools without declared network in a new network namespace when the kernel allows it")
    sandbox_max_concurrent: int = Field(default=8, ge=1, le=256, description="tool processes at once; size the pod's memory limit for this many times the tools' memory_bytes")
    sandbox_warm: bool = Field(default=True, description="keep one tool process started ahead of the next call")

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
