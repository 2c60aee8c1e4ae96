"""What a rule is: its identity for reviewers and waivers, and the function that checks it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .model import Finding, ResourceView

RuleConfig = Mapping[str, Any]
"""This rule's block of the policy config (custom keys only, schema defaults filled in)."""

ResourceCheck = Callable[[ResourceView, RuleConfig], Iterable[Finding]]
StackCheck = Callable[[Sequence[ResourceView], RuleConfig], Iterable[Finding]]


class Severity(StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


WAIVER_CONFIG_SCHEMA: dict[str, dict[str, Any]] = {
    "waivers": {
        "type": "string",
        "enum": ["any", "allow-list"],
        "default": "allow-list",
        "description": "any: every waiver annotation with a reason is accepted (dev); "
        "allow-list: only waivers listed in allowedWaivers (prod).",
    },
    "allowedWaivers": {
        "type": "array",
        "default": [],
        "description": "Waivers accepted for this rule when waivers is allow-list.",
        "items": {
            "type": "object",
            "required": ["resource", "reason"],
            "properties": {
                "resource": {"type": "string", "description": "<kind>/<namespace>/<name>"},
                "reason": {"type": "string", "minLength": 1},
                "image": {"type": "string", "description": "excuse only findings quoting this image"},
                "finding": {"type": "string", "description": "excuse only findings containing this phrase"},
            },
        },
    },
}
"""Config keys every rule accepts: the engine hands each policy only its own block."""


@dataclass(frozen=True)
class Rule:
    """A hardening rule. Exactly one of ``check_resource`` and ``check_stack`` is set."""

    name: str
    description: str
    severity: Severity
    remediation: str
    check_resource: ResourceCheck | None = None
    check_stack: StackCheck | None = None
    config_schema: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    @property
    def is_stack_rule(self) -> bool:
        return self.check_stack is not None

    @property
    def full_config_schema(self) -> dict[str, dict[str, Any]]:
        return {**WAIVER_CONFIG_SCHEMA, **{k: dict(v) for k, v in self.config_schema.items()}}

    def defaults(self) -> dict[str, Any]:
        """The schema defaults, as the Pulumi CLI fills them in before calling the pack."""
        return {key: schema["default"] for key, schema in self.full_config_schema.items() if "default" in schema}
