"""Engine driver: wrap the rule functions as pulumi-policy policies for ``pulumi preview``.

Under the engine a waived violation is simply not reported (the engine has no "waived"
level); the gate's report is where every waiver is listed. A rule that needed a value the
engine does not know yet (preview) reports its real violations first and then raises
UnknownValueError, which pulumi-policy turns into an advisory "can't run policy during
preview" diagnostic: preview does not block on it, and the value is checked on update.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.deserialize import serialize_properties
from pulumi_policy.proxy import UnknownValueError

from .evaluate import Outcome, check_resource, check_stack
from .model import ResourceView
from .rule import Rule
from .rules import RULES

PACK_NAME = "somaagenthub-baseline"
DEFAULT_LEVEL = EnforcementLevel.MANDATORY
"""Without a config file every rule blocks: the pack fails closed."""


def _view(resource_type: str, name: str, urn: str, props: Mapping[str, Any]) -> ResourceView:
    """Snapshot the engine's proxied properties: unknowns become markers, lists become lists."""
    return ResourceView.of(resource_type, name, urn, serialize_properties(props))


def _report(rule: Rule, outcomes: Sequence[Outcome], report_violation: ReportViolation, with_urn: bool) -> None:
    unresolved = []
    for outcome in outcomes:
        if outcome.unresolved is not None:
            unresolved.append(outcome.unresolved)
        elif not outcome.waived:
            message = outcome.message
            if outcome.waiver is not None:
                message = f"{message} (waiver '{outcome.waiver.reason}' rejected: {outcome.waiver.note})"
            report_violation(
                f"{message}\nRemediation: {rule.remediation}", outcome.urn if with_urn and outcome.urn else None
            )
    if unresolved:
        first = unresolved[0]
        raise UnknownValueError(first.sentinel, first.path.split("."))


def _config(args: ResourceValidationArgs | StackValidationArgs, rule: Rule) -> dict[str, Any]:
    """The engine fills in schema defaults; fill them here too for packs run without the CLI."""
    return {**rule.defaults(), **dict(args.get_config() or {})}


def resource_policy(rule: Rule) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        view = _view(args.resource_type, args.name, args.urn, args.props)
        _report(rule, check_resource(rule, view, _config(args, rule)), report_violation, with_urn=False)

    return ResourceValidationPolicy(name=rule.name, validate=validate, **_metadata(rule))


def stack_policy(rule: Rule) -> StackValidationPolicy:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        views = [_view(r.resource_type, r.name, r.urn, r.props) for r in args.resources]
        _report(rule, check_stack(rule, views, _config(args, rule)), report_violation, with_urn=True)

    return StackValidationPolicy(name=rule.name, validate=validate, **_metadata(rule))


def _metadata(rule: Rule) -> dict[str, Any]:
    return {
        "description": rule.description,
        "severity": Severity(rule.severity.value),
        "remediation_steps": rule.remediation,
        "config_schema": PolicyConfigSchema(properties=rule.full_config_schema),
        "enforcement_level": None,
    }


def build_policies(rules: Sequence[Rule] = RULES) -> list[ResourceValidationPolicy | StackValidationPolicy]:
    return [stack_policy(rule) if rule.is_stack_rule else resource_policy(rule) for rule in rules]
