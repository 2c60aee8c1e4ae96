"""Waivers: the one way an object gets an exception from a rule.

The object carries ``waivers.somaagenthub.io/<rule-name>: "<reason>"`` on its own metadata
(the kit writes it from ``opt_out={...}``). Whether a waiver counts is the stack's decision,
made in the rule's policy config: ``waivers: any`` (dev) accepts every waiver with a reason;
``waivers: allow-list`` (prod) accepts only objects listed in the rule's ``allowedWaivers``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .model import ResourceView

WAIVER_PREFIX = "waivers.somaagenthub.io/"
NOT_ALLOWED = "waiver not on the prod allow list"


@dataclass(frozen=True)
class Waiver:
    rule: str
    resource_id: str
    reason: str
    accepted: bool
    note: str = ""


def declared_waivers(resource: ResourceView) -> dict[str, str]:
    """rule name -> reason, for every waiver annotation on the object."""
    return {
        key[len(WAIVER_PREFIX) :]: value.strip() if isinstance(value, str) else ""
        for key, value in resource.annotations.items()
        if key.startswith(WAIVER_PREFIX)
    }


def judge_waiver(resource: ResourceView, rule: str, config: Mapping[str, Any]) -> Waiver | None:
    """The object's waiver for ``rule`` and whether this stack's config accepts it (None: no waiver)."""
    reason = declared_waivers(resource).get(rule)
    if reason is None:
        return None
    resource_id = resource.resource_id
    if not reason:
        return Waiver(rule, resource_id, reason, False, "waiver has no reason")
    if config.get("waivers", "allow-list") == "any":
        return Waiver(rule, resource_id, reason, True)
    allowed = {entry.get("resource") for entry in config.get("allowedWaivers", []) if isinstance(entry, Mapping)}
    if resource_id in allowed:
        return Waiver(rule, resource_id, reason, True)
    return Waiver(rule, resource_id, reason, False, NOT_ALLOWED)
