"""Alerts that can fire: every metric a rule or a dashboard panel queries is produced by a scrape the plan runs.

Read from the rendered plans of both stacks (charts expanded), and of prod with every namespace renamed:

* every alert and recording rule of ours (the PrometheusRules Core builds, the generated backup-age
  rule included) and every Prometheus target of every dashboard ConfigMap is parsed with
  ``promql_parser``; each vector selector's metric is mapped to its producer
  (components/core/observability/producers.py, each family with where it was read);
* the producer's monitor exists in the plan and has targets: pods or Services of the plan (or pods
  an operator makes from the plan's resources, tests/scrapes.py) that it selects, in the namespaces
  it looks at, on a port they declare, at the path that serves the family;
* labels the exporter sets itself (``namespace`` of kube-state-metrics, cert-manager, External
  Secrets, the kubelet) survive the scrape (``honorLabels``), and kube-state-metrics collects the
  resource a ``kube_<resource>_`` metric describes;
* a metric the services push over OTLP (producers.PUSHED) has no monitor: its sources are the kit workloads
  with ``OTEL_METRICS_EXPORTER=otlp`` (:func:`otlp_pushers`); the stacks run none until the services are pinned,
  so here it is only listed as waiting, and tests/test_agents_services.py checks it on the stacks rendered with
  the services on;
* the ``job`` and ``namespace`` matchers of a selector accept the job and namespace of at least one
  of those targets (for ``up``: of any target in the plan), so ``absent(...)`` does not fire forever
  and ``== 0`` can fire at all.

The metric-specific labels a rule matches (``consumergroup``, ``reason``, ``condition`` ...) are not
checked here; docs/observability-metrics.md cites where each was read, and the promtool rule tests
(test_alert_rules_promtool.py) show the rules fire on series with those labels.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass

import promql_parser
import pytest

from components import settings as platform_settings
from components.core.observability import producers
from components.core.observability.catalog import promql_for_parsing
from tests.helpers import config_with, objects, stack_document
from tests.scrapes import Target, all_targets, matches
from tools.render import render, stack_config

STACKS = ("dev", "prod")
CHART = "kubernetes:helm.sh/v4:Chart"
OPS = {"MatchOp.Equal": "=", "MatchOp.NotEqual": "!=", "MatchOp.Re": "=~", "MatchOp.NotRe": "!~"}
TARGET_LABELS = ("job", "namespace")
REGEX_SYNTAX = "()[]{}|*+?.\\^$"


@dataclass(frozen=True)
class Selector:
    where: str
    metric: str  # the name, or for a {__name__=~"..."} selector the literal prefix of the regex
    matchers: tuple[tuple[str, str, str], ...]  # (label, op, value)


def our_rules(plan: dict) -> list[dict]:
    """The PrometheusRules Core builds (not the ones charts render)."""
    charts = {r["urn"] for r in plan["resources"] if r["type"] == CHART}
    return [r["inputs"] for r in plan["resources"] if r["inputs"].get("kind") == "PrometheusRule" and r["parent"] not in charts]


def rendered_dashboards(plan: dict) -> list[dict]:
    return [json.loads(text) for m in objects(plan, "ConfigMap") if m["metadata"].get("labels", {}).get("grafana_dashboard") == "1"
            for text in m["data"].values()]


def queries(plan: dict) -> list[tuple[str, str]]:
    """(where, PromQL) of every rule of ours and every Prometheus target of every dashboard, as rendered."""
    found = []
    for rule_object in our_rules(plan):
        for group in rule_object["spec"]["groups"]:
            for rule in group["rules"]:
                found.append((f"PrometheusRule {rule_object['metadata']['name']}: {rule.get('alert') or rule.get('record')}", rule["expr"]))
    for dashboard in rendered_dashboards(plan):
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                uid = (target.get("datasource") or panel.get("datasource") or {}).get("uid")
                if uid == "prometheus":
                    found.append((f"dashboard {dashboard['uid']}: panel {panel['title']!r} {target['refId']}", target["expr"]))
    return found


def selectors(where: str, expr: str) -> list[Selector]:
    found = []

    def visit(node):
        if not isinstance(node, promql_parser.VectorSelector):
            return
        matchers = tuple((m.name, OPS[str(m.op)], m.value) for m in node.matchers.matchers if m.name != "__name__")
        names = [m for m in node.matchers.matchers if m.name == "__name__"]
        metric = node.name
        if not metric and names:
            value = names[0].value
            cut = min([value.index(c) for c in REGEX_SYNTAX if c in value], default=len(value))
            metric = value[:cut] if OPS[str(names[0].op)] == "=~" else value
        found.append(Selector(where, metric or "", matchers))

    promql_parser.walk(promql_parser.parse(promql_for_parsing(expr)), visit)
    return found


def recorded(plan: dict) -> set[str]:
    """Metric names a PrometheusRule of the plan (ours or a chart's) records."""
    return {rule["record"] for o in objects(plan, "PrometheusRule") for g in o["spec"]["groups"] for rule in g["rules"] if rule.get("record")}


def namespace_names(plan: dict) -> set[str]:
    return {n["metadata"]["name"] for n in objects(plan, "Namespace")}


def monitor_key(monitor: producers.Monitor, settings: platform_settings.PlatformSettings) -> tuple[str, str, str]:
    return monitor.kind, producers.monitor_namespace(monitor, settings), monitor.name


def ksm_resources(plan: dict) -> set[str]:
    """The resources kube-state-metrics collects (its ``--resources`` argument)."""
    for deployment in objects(plan, "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            for arg in container.get("args", []):
                if arg.startswith("--resources="):
                    return set(arg.split("=", 1)[1].split(","))
    return set()


def label_problem(selector: Selector, candidates: list[Target], own: tuple[str, ...], namespaces: set[str]) -> str | None:
    """Why no candidate target carries a ``job`` and ``namespace`` the selector accepts, if none does."""
    on_target = [(label, op, value) for label, op, value in selector.matchers if label in TARGET_LABELS and label not in own]
    on_object = [(label, op, value) for label, op, value in selector.matchers if label == "namespace" and label in own]
    if on_object and not any(all(matches(op, value, ns) for _, op, value in on_object) for ns in namespaces):
        return f"{selector.metric}: namespace matchers {on_object} accept no namespace of the plan"
    if on_target and not any(all(matches(op, value, getattr(t, label)) for label, op, value in on_target) for t in candidates):
        seen = sorted({(t.job, t.namespace) for t in candidates})[:8]
        return f"{selector.metric}: no target has job/namespace accepted by {on_target} (targets: {seen})"
    return None


def otlp_pushers(plan: dict) -> list[Target]:
    """The series sources that push over OTLP: kit workloads with ``OTEL_METRICS_EXPORTER=otlp``, as Prometheus' OTLP
    receiver labels their series: ``job`` ``<service.namespace>/<service.name>``, no ``namespace`` label (producers.Pushed)."""
    found = []
    for obj in objects(plan):
        if obj["kind"] not in ("Deployment", "StatefulSet"):
            continue
        for container in obj["spec"]["template"]["spec"]["containers"]:
            env = {e["name"]: e.get("value") for e in container.get("env", [])}
            if env.get("OTEL_METRICS_EXPORTER") != "otlp":
                continue
            attributes = dict(a.split("=", 1) for a in (env.get("OTEL_RESOURCE_ATTRIBUTES") or "").split(",") if "=" in a)
            job = f"{attributes['service.namespace']}/{env['OTEL_SERVICE_NAME']}" if "service.namespace" in attributes else env["OTEL_SERVICE_NAME"]
            found.append(Target(("OTLP", obj["metadata"]["namespace"], obj["metadata"]["name"]), job, "", "", False,
                                f"{obj['kind']} {obj['metadata']['name']} (OTLP)"))
    return found


def producer_problems(plan: dict, stack: str, config: dict[str, str] | None = None,
                      parsed: platform_settings.PlatformSettings | None = None) -> tuple[list[str], dict]:
    """Every query of the plan whose metric no scrape of the plan produces, and what was checked. ``parsed``: the
    plan's settings when already parsed (a render with a test catalog, whose pins the real lock would refuse)."""
    settings = parsed or platform_settings.parse(config or stack_config(stack), stack)
    targets = all_targets(plan)
    every = [t for ts in targets.values() for t in ts]
    records, namespaces, collected = recorded(plan), namespace_names(plan), ksm_resources(plan)
    problems, metrics, producers_used, waiting = [], set(), set(), set()
    pushers = otlp_pushers(plan)
    found = queries(plan)
    for where, expr in found:
        for selector in selectors(where, expr):
            metrics.add(selector.metric)
            own: tuple[str, ...] = ()
            if selector.metric == producers.EVERY_TARGET:
                candidates = every
            elif producers.pushed_of(selector.metric) is not None:
                producers_used.add(producers.pushed_of(selector.metric).family)
                if not pushers:
                    waiting.add(selector.metric)  # nothing in this plan pushes it: empty panel, quiet alert
                    continue
                candidates = pushers
            elif selector.metric in records:
                continue  # produced by a rule of the plan, whose expression is checked as a query of its own
            else:
                producer = producers.producer_of(selector.metric)
                if producer is None:
                    problems.append(f"{where}: {selector.metric}: no producer declared in producers.py")
                    continue
                producers_used.add(producer.family)
                key = monitor_key(producer.monitor, settings)
                if key not in targets:
                    problems.append(f"{where}: {selector.metric}: its producer {'/'.join(key)} is not in the plan")
                    continue
                candidates = [t for t in targets[key] if t.path == producer.path]
                if not candidates:
                    problems.append(f"{where}: {selector.metric}: {'/'.join(key)} scrapes no pod or Service of the plan at {producer.path}")
                    continue
                own = producer.own_labels
                if own and not all(t.honor_labels for t in candidates):
                    problems.append(f"{where}: {selector.metric}: {'/'.join(key)} overwrites the exporter's {list(own)} "
                                    "(set honorLabels on its endpoint)")
                if producer.ksm_resource and producer.ksm_resource not in collected:
                    problems.append(f"{where}: {selector.metric}: kube-state-metrics does not collect {producer.ksm_resource}")
            problem = label_problem(selector, candidates, own, namespaces)
            if problem:
                problems.append(f"{where}: {problem}")
    stats = {"queries": len(found), "metrics": metrics, "families": producers_used, "waiting": waiting,
             "alerts": sum(1 for w, _ in found if w.startswith("PrometheusRule")),
             "panel targets": sum(1 for w, _ in found if w.startswith("dashboard"))}
    return problems, stats


@pytest.mark.parametrize("stack", STACKS)
def test_every_queried_metric_is_produced_by_a_scrape_of_the_plan(plans, stack):
    problems, stats = producer_problems(plans[stack], stack)
    assert problems == []
    assert stats["alerts"] >= 30 and stats["panel targets"] >= 15, stats


def test_every_declared_producer_is_used_and_cites_its_source(plans):
    """A family no query uses is dead weight; one without a source is a guess."""
    _, stats = producer_problems(plans["prod"], "prod")
    assert {p.family for p in (*producers.PRODUCERS, *producers.PUSHED)} == stats["families"]
    assert all(len(p.source) > 40 for p in (*producers.PRODUCERS, *producers.PUSHED))
    # the stacks keep the services off (no pinned images): their pushed metrics wait for them
    assert stats["waiting"] == {"http_server_request_duration_seconds_count", "http_server_request_duration_seconds_bucket"}


# --- the check catches what it is for ------------------------------------------------------------

def _with_rule(plan: dict, expr: str) -> dict:
    broken = copy.deepcopy(plan)
    rule = next(r["inputs"] for r in broken["resources"] if r["inputs"].get("kind") == "PrometheusRule"
                and r["inputs"]["metadata"]["name"] == "soma-workloads")
    rule["spec"]["groups"][0]["rules"].append({"alert": "Probe", "expr": expr, "for": "5m", "labels": {"severity": "info"}})
    return broken


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("istio_requests_total > 0", "istio_requests_total: no producer declared"),
        ('absent(up{job="soma-secrets/vault-typo"})', "no target has job/namespace accepted"),
        ('up{namespace="soma-data", job="minio-metrics"} == 0', "no target has job/namespace accepted"),
        ('vault_core_unsealed{namespace="soma-data"} == 0', "no target has job/namespace accepted"),
        ('kube_pod_info{namespace="nowhere"}', "accept no namespace of the plan"),
    ],
)
def test_a_query_nothing_produces_is_reported(plans, expr, message):
    problems, _ = producer_problems(_with_rule(plans["prod"], expr), "prod")
    assert len(problems) == 1 and "PrometheusRule soma-workloads: Probe" in problems[0] and message in problems[0], problems


def test_a_missing_monitor_a_selector_that_misses_and_lost_labels_are_reported(plans):
    broken = copy.deepcopy(plans["prod"])
    by_name = {(r["inputs"].get("kind"), r["inputs"].get("metadata", {}).get("name")): r for r in broken["resources"]}
    broken["resources"].remove(by_name[("PodMonitor", "kafka-exporter")])
    by_name[("PodMonitor", "vault")]["inputs"]["spec"]["selector"]["matchLabels"]["component"] = "servr"
    by_name[("ServiceMonitor", "cert-manager")]["inputs"]["spec"]["endpoints"][0]["honorLabels"] = False
    problems, _ = producer_problems(broken, "prod")
    assert any("kafka_consumergroup_lag: its producer PodMonitor/soma-data/kafka-exporter is not in the plan" in p for p in problems)
    assert any("vault_core_unsealed: PodMonitor/soma-secrets/vault scrapes no pod" in p for p in problems)
    assert any("VaultDown" in p and "no target has job/namespace" in p for p in problems)
    assert any("certmanager_certificate_expiration_timestamp_seconds" in p and "honorLabels" in p for p in problems)


def test_kube_state_metrics_must_collect_what_the_rules_read(plans):
    broken = copy.deepcopy(plans["prod"])
    for r in broken["resources"]:
        for container in (r["inputs"].get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
                          if r["inputs"].get("kind") == "Deployment" else []):
            container["args"] = [a.replace(",cronjobs", "") for a in container.get("args", [])]
    problems, _ = producer_problems(broken, "prod")
    assert problems and all("kube-state-metrics does not collect cronjobs" in p for p in problems)
    assert any("BackupTooOld" in p for p in problems)


# --- a stack that renames its namespaces: rules and dashboards follow ------------------------------

RENAMED_PREFIX = "x-"


@pytest.fixture(scope="module")
def renamed() -> tuple[dict, dict[str, str], dict[str, str]]:
    """Prod with every namespace renamed soma-<x> -> x-<x>: (plan, config, old name -> new name)."""
    changes, renames = {}, {}
    for phase in ("core", "mesh", "governance", "agents", "ops"):
        doc = stack_document("prod")[f"somaagenthub:{phase}"]
        for ns in doc["namespaces"].values():
            new = RENAMED_PREFIX + ns["name"].removeprefix("soma-")
            renames[ns["name"]] = new
            ns["name"] = new
        changes[phase] = doc
    config = config_with("prod", **changes)
    return render("prod", config=config), config, renames


def test_a_renamed_stack_has_rules_and_dashboards_in_its_own_namespaces(renamed):
    plan, config, renames = renamed
    # except the compliance dashboard's "Waivers in force", which quotes the gate's waivers file verbatim: it names
    # objects by the namespaces that file was written for (the renamed stack keeps prod's policies/config)
    dashboards = [{**d, "panels": [p for p in d.get("panels", []) if p.get("title") != "Waivers in force"]}
                  for d in rendered_dashboards(plan)]
    rendered = json.dumps([o["spec"] for o in our_rules(plan)] + dashboards)
    assert not [old for old in renames if old in rendered.replace('"uid": "soma-', '"uid": "')]
    assert renames["soma-secrets"] + "/vault" in rendered and renames["soma-data"] in rendered
    problems, stats = producer_problems(plan, "prod", config)
    assert problems == []
    assert stats["alerts"] >= 30
