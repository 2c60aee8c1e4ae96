"""The promotion gate: run every policy rule over a rendered plan, offline, and report.

    python -m tools.gate --stack prod [--plan build/prod/plan.json] [--config policies/config/prod.json]

Exit 0 when no unwaived mandatory violation, 1 when there is one, 2 when the input is
unusable (missing or malformed plan, config or catalog). The rules, config resolution and
waiver handling are the policy pack's own (``policies``); this module only feeds them the
plan's resources and prints what they found.

Allowed registries come from the policy config only, never from the plan's
``settings.registry``: the gate must not let the program widen its own allow list.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policies.catalog import CatalogError, load_catalog
from policies.config import (
    PolicyConfigError,
    RuleSettings,
    load_config_file,
    resolve_settings,
    stack_config_path,
)
from policies.evaluate import Outcome, check_resource, check_stack
from policies.model import ResourceView
from policies.rule import Rule
from policies.rules import RULES
from policies.waivers import Waiver, declared_waivers, image_waivers, judge_waiver

REPO_ROOT = Path(__file__).resolve().parent.parent
LEVEL_ORDER = {"mandatory": 0, "advisory": 1, "waived": 2}


class GateError(Exception):
    """The gate cannot judge: the plan, the policy config or the catalog is unusable."""


@dataclass(frozen=True)
class ReportLine:
    level: str
    rule: str
    urn: str
    message: str
    waiver: Waiver | None = None

    @property
    def blocking(self) -> bool:
        return self.level == "mandatory"

    def render(self) -> str:
        text = f"{self.level.upper():<9}  {self.rule:<28}  {self.urn or '(stack)'}\n    {self.message}"
        if self.waiver is not None and self.waiver.accepted:
            text += f"\n    waiver: {self.waiver.reason}"
        elif self.waiver is not None:
            text += f"\n    waiver rejected ({self.waiver.note}): {self.waiver.reason}"
        return text


@dataclass(frozen=True)
class WaiverUse:
    waiver: Waiver
    urn: str
    used: bool


@dataclass(frozen=True)
class GateReport:
    stack: str
    resource_count: int
    lines: tuple[ReportLine, ...]
    waivers: tuple[WaiverUse, ...] = field(default=())

    @property
    def blocking(self) -> tuple[ReportLine, ...]:
        return tuple(line for line in self.lines if line.blocking)

    @property
    def passed(self) -> bool:
        return not self.blocking

    def counts(self) -> dict[str, Counter[str]]:
        """rule -> level -> number of report lines."""
        summary: dict[str, Counter[str]] = {}
        for line in self.lines:
            summary.setdefault(line.rule, Counter())[line.level] += 1
        return summary

    def render(self) -> str:
        out = [f"Policy gate, stack '{self.stack}': {self.resource_count} resources checked"]
        out.extend(line.render() for line in self.lines)
        out.append(f"Waivers ({len(self.waivers)}):")
        for use in self.waivers:
            w = use.waiver
            status = "accepted" if w.accepted else f"rejected: {w.note}"
            unused = "" if use.used else " (matches no violation)"
            scope = f"  {w.scope}" if w.scope else ""
            out.append(f"  {w.rule:<28}  {w.resource_id}{scope}  [{status}]{unused}  {w.reason}")
        out.append("Summary (rule: mandatory / advisory / waived):")
        counts = self.counts()
        for rule in RULES:
            c = counts.get(rule.name, Counter())
            out.append(f"  {rule.name:<28}  {c['mandatory']:>4} / {c['advisory']:>4} / {c['waived']:>4}")
        verdict = "PASSED" if self.passed else f"FAILED: {len(self.blocking)} mandatory violation(s)"
        out.append(f"Gate {verdict}")
        return "\n".join(out)


def plan_views(plan: Mapping[str, Any]) -> list[ResourceView]:
    resources = plan.get("resources")
    if not isinstance(resources, list):
        raise GateError("plan has no 'resources' list")
    views: list[ResourceView] = []
    for index, resource in enumerate(resources):
        if not isinstance(resource, Mapping):
            raise GateError(f"plan resource #{index} is not an object")
        for key, kind in (("type", str), ("urn", str), ("inputs", Mapping)):
            if not isinstance(resource.get(key), kind):
                raise GateError(f"plan resource #{index} has no valid '{key}' (a plan.json from tools.render always has one)")
        views.append(
            ResourceView.of(
                resource["type"],
                str(resource.get("name", "")),
                str(resource.get("urn", "")),
                resource["inputs"],
            )
        )
    return views


def _line(outcome: Outcome, settings: RuleSettings) -> ReportLine:
    level = "waived" if outcome.waived else ("mandatory" if settings.blocking else "advisory")
    return ReportLine(level, outcome.rule, outcome.urn, outcome.message, outcome.waiver)


def _check_catalogs(settings: Mapping[str, RuleSettings]) -> None:
    for rule_settings in settings.values():
        if rule_settings.enabled and "catalogPath" in rule_settings.config:
            try:
                load_catalog(rule_settings.config["catalogPath"])
            except CatalogError as error:
                raise GateError(str(error)) from error


def _waiver_inventory(
    views: Sequence[ResourceView], settings: Mapping[str, RuleSettings], lines: Sequence[ReportLine]
) -> tuple[WaiverUse, ...]:
    """Every waiver in force: each annotation in the plan and each image entry of the stack's allow
    lists, judged, and whether it waived anything (a stale exception shows as matching nothing)."""
    used = {(line.urn, line.rule) for line in lines if line.waiver is not None}
    inventory: list[WaiverUse] = []
    for view in views:
        for rule_name, reason in declared_waivers(view).items():
            if rule_name in settings:
                waiver = judge_waiver(view, rule_name, settings[rule_name].config)
            else:
                waiver = Waiver(rule_name, view.resource_id, reason, False, "no rule with that name")
            if waiver is not None:
                inventory.append(WaiverUse(waiver, view.urn, (view.urn, rule_name) in used))
    for rule_name, rule_settings in settings.items():
        for waiver in image_waivers(rule_name, rule_settings.config):
            uses = [line.urn for line in lines if line.waiver is not None and line.waiver.scope == waiver.scope
                    and line.waiver.resource_id == waiver.resource_id and line.rule == rule_name]
            inventory.append(WaiverUse(waiver, uses[0] if uses else "", bool(uses)))
    return tuple(inventory)


def _check_enforcement(plan: Mapping[str, Any], settings: Mapping[str, RuleSettings]) -> None:
    """A stack that declares ``policyEnforcement: mandatory`` may only be judged by a mandatory config.

    Otherwise prod could be promoted by running the gate with dev's advisory config.
    """
    declared = (plan.get("settings") or {}).get("enforcement")
    if declared != "mandatory":
        return
    weaker = sorted(name for name, rule in settings.items() if rule.enabled and not rule.blocking)
    disabled = sorted(name for name, rule in settings.items() if not rule.enabled)
    if weaker or disabled:
        raise GateError(
            f"stack '{plan.get('stack')}' declares policyEnforcement: mandatory, but this policy config makes "
            f"{', '.join(weaker + disabled)} advisory or disabled; use the stack's own config"
        )


def run_gate(plan: Mapping[str, Any], config: Mapping[str, Any], rules: Sequence[Rule] = RULES) -> GateReport:
    """Judge ``plan`` (plan.json's shape) under ``config`` (a parsed policy config file)."""
    try:
        settings = resolve_settings(config, rules)
    except PolicyConfigError as error:
        raise GateError(str(error)) from error
    _check_enforcement(plan, settings)
    _check_catalogs(settings)
    views = plan_views(plan)
    lines: list[ReportLine] = []
    for rule in rules:
        rule_settings = settings[rule.name]
        if not rule_settings.enabled:
            continue
        if rule.is_stack_rule:
            outcomes = check_stack(rule, views, rule_settings.config)
        else:
            outcomes = [o for view in views for o in check_resource(rule, view, rule_settings.config)]
        lines.extend(_line(outcome, rule_settings) for outcome in outcomes)
    lines.sort(key=lambda line: (LEVEL_ORDER[line.level], line.rule, line.urn))
    return GateReport(
        stack=str(plan.get("stack", "")),
        resource_count=len(views),
        lines=tuple(lines),
        waivers=_waiver_inventory(views, settings, lines),
    )


def load_plan(path: Path) -> dict[str, Any]:
    try:
        plan = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise GateError(f"plan {path} does not exist; run `make render STACK=<stack>` first") from error
    except OSError as error:
        raise GateError(f"plan {path} cannot be read: {error.strerror}") from error
    except json.JSONDecodeError as error:
        raise GateError(f"plan {path} is not valid JSON: {error}") from error
    if not isinstance(plan, dict):
        raise GateError(f"plan {path} must be a JSON object")
    return plan


def _arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.gate", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", required=True, help="stack whose plan and policy config to use")
    parser.add_argument("--plan", type=Path, help="plan file (default build/<stack>/plan.json)")
    parser.add_argument("--config", type=Path, help="policy config (default policies/config/<stack>.json)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _arguments(argv)
    plan_path = args.plan or REPO_ROOT / "build" / args.stack / "plan.json"
    config_path = args.config or stack_config_path(args.stack)
    try:
        plan = load_plan(plan_path)
        if plan.get("stack") not in (None, args.stack):
            raise GateError(f"plan {plan_path} is for stack '{plan.get('stack')}', not '{args.stack}'")
        report = run_gate(plan, load_config_file(config_path))
    except (GateError, PolicyConfigError) as error:
        print(f"gate: unusable input: {error}", file=sys.stderr)
        return 2
    print(report.render())
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
