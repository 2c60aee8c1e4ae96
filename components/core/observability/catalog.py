"""Platform dashboards and alert rules, kept as files and read here.

The files next to this module are the source of truth: ``dashboards/<phase>.json`` (Grafana
dashboard JSON, one per roadmap phase) and ``alerts/<group>.yaml`` (the ``spec`` body of a
PrometheusRule). The program turns the first into ConfigMaps labelled ``grafana_dashboard=1``
and the second into PrometheusRule objects; it only needs :func:`load_dashboards` and
:func:`load_alert_groups`, which check the shape and raise ``ValueError`` naming the file.

The files are templates: what depends on the stack (namespace names, scrape jobs) is written as a
named placeholder ``<<name>>`` (``<<ns.secrets>>``, ``<<job.vault>>``), filled from the stack's
settings before the file is parsed (placeholders.py says which names exist and where each value
comes from). ``<<`` and ``>>`` mean nothing in PromQL, LogQL, Go templates (Prometheus'
``{{ $labels.x }}`` annotations) or Grafana (``$var``, ``${var}``), so neither can be mistaken for the
other. A placeholder the values do not know, or a stray ``<<``/``>>``, stops the load naming the file.

:func:`query_problems` goes further and parses every PromQL expression. It needs the
``promql_parser`` package, so it is meant for tests and CI, not for ``pulumi up``.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent
DASHBOARD_DIR = HERE / "dashboards"
ALERT_DIR = HERE / "alerts"

PHASES = ("core", "mesh", "governance", "agents", "ops")
DATASOURCE_UIDS = frozenset({"prometheus", "loki", "tempo"})
SEVERITIES = frozenset({"critical", "warning", "info"})
RUNBOOK_PREFIX = "docs/runbooks/observability.md#"
RULE_KEYS = ("alert", "expr", "for")
ANNOTATION_KEYS = ("summary", "runbook_url")

# Grafana expands these before a query reaches Prometheus; for parsing we stand in values of
# the same kind (durations for the interval macros, a plain word for any dashboard variable).
_GRAFANA_DURATIONS = re.compile(r"\$(?:__rate_interval|__interval|__range)\b|\$\{(?:__rate_interval|__interval|__range)\}")
_GRAFANA_VARIABLE = re.compile(r"\$\{[A-Za-z0-9_]+(?::[A-Za-z0-9_]+)?\}|\$[A-Za-z_][A-Za-z0-9_]*")
# A LogQL query opens with a stream selector holding at least one label matcher.
_LOGQL_SELECTOR = re.compile(r'^\s*\{\s*[A-Za-z_][A-Za-z0-9_]*\s*(=~|!~|=|!=)\s*"[^"]*"')
PLACEHOLDER = re.compile(r"<<([^<>\n]*)>>")
_PLACEHOLDER_NAME = re.compile(r"[a-z][a-z0-9-]*(?:\.[a-z][a-z0-9-]*)+")
# Values land inside PromQL and JSON strings: label values, regex alternations, job paths only.
_SAFE_VALUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/|-]*")


def fill(text: str, values: Mapping[str, str], where: str = "") -> str:
    """``text`` with every ``<<name>>`` replaced by ``values[name]``.

    Raises ``ValueError`` naming ``where`` for an unknown or malformed placeholder, a ``<<`` or
    ``>>`` left over, or a value that could break out of the string it lands in.
    """
    prefix = f"{where}: " if where else ""
    problems = []
    for name in sorted({m.group(1) for m in PLACEHOLDER.finditer(text)}):
        if not _PLACEHOLDER_NAME.fullmatch(name):
            problems.append(f"malformed placeholder <<{name}>> (expected <<group.name>>)")
        elif name not in values:
            problems.append(f"unknown placeholder <<{name}>> (known: {', '.join(sorted(values))})")
        elif not _SAFE_VALUE.fullmatch(values[name]):
            problems.append(f"placeholder <<{name}>> has the unsafe value {values[name]!r}")
    filled = PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)
    if not problems and ("<<" in filled or ">>" in filled):
        problems.append("a '<<' or '>>' that is not a placeholder")
    if problems:
        raise ValueError(prefix + "; ".join(problems))
    return filled


def _read(path: Path, values: Mapping[str, str]) -> Any:
    text = fill(path.read_text(encoding="utf-8"), values, path.name)
    try:
        return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"{path.name}: not valid {path.suffix[1:].upper()}: {exc}") from exc


def _panel_datasource_uids(panel: Mapping[str, Any]) -> list[Any]:
    uids = [(panel.get("datasource") or {}).get("uid")]
    uids += [(t.get("datasource") or {}).get("uid") for t in panel.get("targets", []) if t.get("datasource")]
    return uids


def _dashboard_problems(dashboard: Any) -> list[str]:
    if not isinstance(dashboard, dict):
        return ["the file does not hold a JSON object"]
    problems = [f"missing '{key}'" for key in ("title", "uid") if not dashboard.get(key)]
    panels = dashboard.get("panels")
    if not isinstance(panels, list) or not panels:
        return problems + ["no 'panels'"]
    for n, panel in enumerate(panels, 1):
        name = f"panel {n} ({panel.get('title', 'untitled')!r})"
        if not panel.get("targets"):
            problems.append(f"{name} has no targets")
        for uid in _panel_datasource_uids(panel):
            if uid not in DATASOURCE_UIDS:
                problems.append(f"{name} uses datasource uid {uid!r}, expected one of {sorted(DATASOURCE_UIDS)}")
    return problems


def _rule_problems(rule: Any) -> list[str]:
    if not isinstance(rule, dict):
        return ["is not a mapping"]
    problems = [f"has no '{key}'" for key in RULE_KEYS if not rule.get(key)]
    severity = (rule.get("labels") or {}).get("severity")
    if severity not in SEVERITIES:
        problems.append(f"has severity {severity!r}, expected one of {sorted(SEVERITIES)}")
    annotations = rule.get("annotations") or {}
    problems += [f"has no annotations.{key}" for key in ANNOTATION_KEYS if not annotations.get(key)]
    runbook = annotations.get("runbook_url", "")
    if runbook and not (runbook.startswith(RUNBOOK_PREFIX) and len(runbook) > len(RUNBOOK_PREFIX)):
        problems.append(f"has runbook_url {runbook!r}, expected '{RUNBOOK_PREFIX}<anchor>'")
    return problems


def _alert_spec_problems(spec: Any) -> list[str]:
    if not isinstance(spec, dict) or not isinstance(spec.get("groups"), list) or not spec["groups"]:
        return ["expected a PrometheusRule spec: a mapping with a non-empty 'groups' list"]
    problems = []
    for group in spec["groups"]:
        if not isinstance(group, dict) or not group.get("name"):
            problems.append("a group has no 'name'")
            continue
        rules = group.get("rules")
        if not isinstance(rules, list) or not rules:
            problems.append(f"group {group['name']!r} has no rules")
            continue
        for n, rule in enumerate(rules, 1):
            label = rule.get("alert") if isinstance(rule, dict) and rule.get("alert") else f"rule {n}"
            problems += [f"group {group['name']!r}, {label} {p}" for p in _rule_problems(rule)]
    return problems


def load_dashboards(values: Mapping[str, str], directory: Path | None = None) -> dict[str, dict]:
    """Every ``<name>.json`` dashboard by file stem, its placeholders filled from ``values``,
    checked for title, uid, panels, datasources."""
    directory = directory or DASHBOARD_DIR
    dashboards: dict[str, dict] = {}
    uid_owner: dict[str, str] = {}
    for path in sorted(directory.glob("*.json")):
        dashboard = _read(path, values)
        problems = _dashboard_problems(dashboard)
        if problems:
            raise ValueError(f"{path.name}: " + "; ".join(problems))
        uid = dashboard["uid"]
        if uid in uid_owner:
            raise ValueError(f"{path.name}: uid {uid!r} is already used by {uid_owner[uid]}")
        uid_owner[uid] = path.name
        dashboards[path.stem] = dashboard
    if not dashboards:
        raise ValueError(f"{directory}: no dashboard files")
    return dashboards


def load_alert_groups(values: Mapping[str, str], directory: Path | None = None,
                      runbook_base: str | None = None) -> dict[str, dict]:
    """Every ``<name>.yaml`` PrometheusRule spec by file stem, its placeholders filled from
    ``values``, each rule checked for the keys an on-call engineer relies on (alert, expr, for,
    severity, summary, runbook_url).

    ``runbook_base`` (for example the repository's web address) replaces the repository-relative
    ``docs/runbooks/...`` prefix so the links in notifications are clickable.
    """
    directory = directory or ALERT_DIR
    specs: dict[str, dict] = {}
    alert_owner: dict[str, str] = {}
    for path in sorted(directory.glob("*.yaml")):
        spec = _read(path, values)
        problems = _alert_spec_problems(spec)
        if problems:
            raise ValueError(f"{path.name}: " + "; ".join(problems))
        for group in spec["groups"]:
            for rule in group["rules"]:
                name = rule["alert"]
                if name in alert_owner:
                    raise ValueError(f"{path.name}: alert {name!r} is already defined in {alert_owner[name]}")
                alert_owner[name] = path.name
                if runbook_base:
                    url = rule["annotations"]["runbook_url"]
                    rule["annotations"]["runbook_url"] = runbook_base.rstrip("/") + "/" + url
        specs[path.stem] = spec
    if not specs:
        raise ValueError(f"{directory}: no alert files")
    return specs


def iter_alert_rules(specs: Mapping[str, dict]) -> Iterator[tuple[str, dict]]:
    """``(file stem, rule)`` for every rule of every group."""
    for stem, spec in specs.items():
        for group in spec["groups"]:
            for rule in group["rules"]:
                yield stem, rule


def iter_dashboard_targets(dashboards: Mapping[str, dict]) -> Iterator[tuple[str, dict, dict, str]]:
    """``(file stem, panel, target, datasource uid)`` for every query of every panel."""
    for stem, dashboard in dashboards.items():
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                uid = (target.get("datasource") or panel.get("datasource") or {}).get("uid")
                yield stem, panel, target, uid


def promql_for_parsing(expr: str) -> str:
    """The expression as Prometheus will see it once Grafana has expanded its variables."""
    return _GRAFANA_VARIABLE.sub("grafana_variable", _GRAFANA_DURATIONS.sub("5m", expr))


def promql_problem(expr: str) -> str | None:
    """Why ``expr`` is not valid PromQL, or ``None`` when it parses."""
    import promql_parser  # test/CI dependency only; see the module docstring

    if not isinstance(expr, str) or not expr.strip():
        return "empty expression"
    try:
        promql_parser.parse(promql_for_parsing(expr))
    except Exception as exc:  # the parser raises ValueError, but keep any failure readable
        return str(exc) or type(exc).__name__
    return None


def logql_problem(expr: str) -> str | None:
    """LogQL cannot be parsed here: require at least a stream selector with a matcher."""
    if not isinstance(expr, str) or not _LOGQL_SELECTOR.match(expr):
        return "LogQL must start with a stream selector such as {namespace=\"...\"}"
    return None


def traceql_problem(query: str) -> str | None:
    if not isinstance(query, str) or not query.strip().startswith("{"):
        return "TraceQL must start with a span selector such as {resource.service.name=\"...\"}"
    return None


def query_problems(dashboards: Mapping[str, dict], specs: Mapping[str, dict]) -> list[str]:
    """Every query that would not run, named by file and alert or panel."""
    problems = []
    for stem, rule in iter_alert_rules(specs):
        problem = promql_problem(rule.get("expr", ""))
        if problem:
            problems.append(f"alerts/{stem}.yaml, {rule.get('alert')}: {problem}")
    for stem, panel, target, uid in iter_dashboard_targets(dashboards):
        where = f"dashboards/{stem}.json, panel {panel.get('title')!r} target {target.get('refId')}"
        if uid == "prometheus":
            problem = promql_problem(target.get("expr", ""))
        elif uid == "loki":
            problem = logql_problem(target.get("expr", ""))
        elif uid == "tempo":
            problem = traceql_problem(target.get("query", ""))
        else:
            problem = f"datasource uid {uid!r} is not one of {sorted(DATASOURCE_UIDS)}"
        if problem:
            problems.append(f"{where}: {problem}")
    return problems
