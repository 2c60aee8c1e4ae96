"""What every phase component shares: its type token and its namespaces."""
from __future__ import annotations

from typing import Mapping

import pulumi

from components.kit import KitContext, PlatformNamespace
from components.settings import NamespaceSettings


class Phase(pulumi.ComponentResource):
    """A roadmap phase: ``somaagenthub:phase:<Name>``, owning its namespaces and everything in them."""

    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__(f"somaagenthub:phase:{name}", name.lower(), None, opts)
        self.child = pulumi.ResourceOptions(parent=self)

    def namespaces(self, wanted: Mapping[str, NamespaceSettings], ctx: KitContext, **exceptions: tuple[str, str]) -> dict[str, PlatformNamespace]:
        """One :class:`PlatformNamespace` per entry; ``exceptions`` maps a purpose to (PSA level, reason)."""
        made = {}
        for purpose, ns in wanted.items():
            level, reason = exceptions.get(purpose, ("restricted", ""))
            made[purpose] = PlatformNamespace(ns, ctx, pod_security=level, pod_security_reason=reason, opts=self.child)
        return made
