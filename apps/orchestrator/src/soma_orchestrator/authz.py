"""Who is asking, and OpenFGA's answer: ``can_run`` on ``workflow:<id>`` for the caller before a run starts,
``can_call`` on ``tool:<name>`` for the workflow (``workflow:<id>``) before each tool call.

Callers are identified by the gateway, which verifies the token and sets ``X-Soma-Tenant`` and
``X-Soma-Principal`` (the OpenFGA user, e.g. ``user:bob``); the orchestrator trusts exactly those two and
asks OpenFGA again itself (the gateway's check guards the door, this one guards the run: a resumed or
recovered run acts long after the request that started it). No answer is never yes:
``AuthorizationUnavailable`` propagates and the run or call is refused.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from soma_service.openfga import AuthorizationUnavailable, OpenFgaClient
from soma_service.audit import actor_of

__all__ = ["Caller", "Authorizer", "AuthorizationUnavailable", "OBJECT_ID", "TENANT"]

OBJECT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$")     # the gateway's rule for OpenFGA object ids
TENANT = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")       # a DNS label, the audit contract's tenant
_PRINCIPAL = re.compile(r"^(user|service_account|agent|workflow):([A-Za-z0-9][A-Za-z0-9._~@/+=-]{0,199})$")


@dataclass(frozen=True)
class Caller:
    """The verified tenant and OpenFGA user of a request (``user:bob``)."""

    tenant: str
    principal: str

    @classmethod
    def parse(cls, tenant: str | None, principal: str | None) -> "Caller":
        """Raises ValueError naming the header that is missing or malformed."""
        if not tenant:
            raise ValueError("X-Soma-Tenant is missing (requests reach the orchestrator through the gateway)")
        if not TENANT.match(tenant):
            raise ValueError("X-Soma-Tenant is not a DNS label")
        if not principal:
            raise ValueError("X-Soma-Principal is missing (requests reach the orchestrator through the gateway)")
        if not _PRINCIPAL.match(principal):
            raise ValueError("X-Soma-Principal is not '<user|service_account|agent|workflow>:<id>'")
        return cls(tenant, principal)

    @property
    def actor(self) -> dict[str, str]:
        return actor_of(self.principal)


class Authorizer:
    """The two questions the orchestrator asks; ``check`` is ``OpenFgaClient.check`` (or a test's function)."""

    def __init__(self, fga: OpenFgaClient):
        self.fga = fga

    async def can_run(self, caller: Caller, workflow_id: str) -> bool:
        return await self.fga.check(caller.principal, "can_run", f"workflow:{workflow_id}")

    async def can_call(self, workflow_id: str, tool: str) -> bool:
        return await self.fga.check(f"workflow:{workflow_id}", "can_call", f"tool:{tool}")
