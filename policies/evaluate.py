"""Run one rule and apply waivers: the step both drivers (engine adapter and gate) share."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .model import Finding, ResourceView, Unresolved
from .rule import Rule
from .waivers import Waiver, judge_waiver


@dataclass(frozen=True)
class Outcome:
    """One finding of one rule, after waivers: what a report line is made of."""

    rule: str
    urn: str
    resource_id: str
    message: str
    unresolved: Unresolved | None = None
    waiver: Waiver | None = None

    @property
    def waived(self) -> bool:
        return self.waiver is not None and self.waiver.accepted


def _outcomes(
    rule: Rule, findings: Iterable[Finding], default: ResourceView | None, config: Mapping[str, Any]
) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for finding in findings:
        subject = finding.subject or default
        urn = subject.urn if subject else ""
        resource_id = subject.resource_id if subject else ""
        if isinstance(finding, Unresolved):
            message = f"{finding.path} is unknown, so {rule.name} cannot decide"
            outcomes.append(Outcome(rule.name, urn, resource_id, message, unresolved=finding))
        else:
            waiver = judge_waiver(subject, rule.name, config, finding.message) if subject else None
            outcomes.append(Outcome(rule.name, urn, resource_id, finding.message, waiver=waiver))
    return outcomes


def check_resource(rule: Rule, resource: ResourceView, config: Mapping[str, Any]) -> list[Outcome]:
    assert rule.check_resource is not None
    return _outcomes(rule, rule.check_resource(resource, config), resource, config)


def check_stack(rule: Rule, resources: Sequence[ResourceView], config: Mapping[str, Any]) -> list[Outcome]:
    assert rule.check_stack is not None
    return _outcomes(rule, rule.check_stack(resources, config), None, config)
