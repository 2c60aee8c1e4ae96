"""Platform dashboards and alert rules, checked as code.

What is proven here, without Grafana or Prometheus running:

* every PromQL expression (alert rules and dashboard targets) parses with ``promql_parser``,
  after Grafana's own macros are stood in for; LogQL targets sit on the ``loki`` data source and
  open with a stream selector; TraceQL targets sit on ``tempo`` and open with a span selector;
* the validators themselves catch mistakes: broken samples in a temporary directory must be
  refused with a message naming the file and the rule or panel;
* every alert has a known severity, a summary, and a runbook_url whose anchor is a heading of
  ``docs/runbooks/observability.md``;
* every rule file, wrapped as a PrometheusRule object, validates against the CRD schema in
  ``../shared/schemas/crds``;
* one dashboard per phase, unique uids, and every panel on the ``prometheus``, ``loki`` or
  ``tempo`` data source;
* every metric a query names is listed in ``docs/observability-metrics.md`` with its source.

What is not proven: that the series exist in a live cluster with these exact labels. That needs
the platform running; the metrics document records where each name was read.
"""
from __future__ import annotations

import copy
import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path

import jsonschema
import promql_parser
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
OBS_DIR = REPO / "components" / "core" / "observability"
RUNBOOK = REPO / "docs" / "runbooks" / "observability.md"
METRICS_DOC = REPO / "docs" / "observability-metrics.md"
SCHEMA = REPO.parent / "shared" / "schemas" / "crds" / "monitoring.coreos.com" / "prometheusrule_v1.json"


def _load_catalog():
    """Load the module by path: importing ``components.core`` would run phase code."""
    spec = importlib.util.spec_from_file_location("observability_catalog_under_test", OBS_DIR / "catalog.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


catalog = _load_catalog()


@pytest.fixture(scope="module")
def values() -> dict[str, str]:
    """The dev stack's placeholder values (``<<ns.data>>`` and the like)."""
    from tests.helpers import rule_values

    return rule_values("dev")


@pytest.fixture(scope="module")
def dashboards(values) -> dict[str, dict]:
    return catalog.load_dashboards(values)


@pytest.fixture(scope="module")
def specs(values) -> dict[str, dict]:
    return catalog.load_alert_groups(values)


def _rules(specs):
    return [rule for _, rule in catalog.iter_alert_rules(specs)]


def github_anchor(heading: str) -> str:
    """The anchor GitHub (and most Markdown renderers) give a heading."""
    slug = heading.strip().lower()
    slug = re.sub(r"[^\w\- ]", "", slug)
    return slug.replace(" ", "-")


def runbook_anchors() -> set[str]:
    headings = re.findall(r"^#{1,6}\s+(.+?)\s*$", RUNBOOK.read_text(encoding="utf-8"), flags=re.M)
    return {github_anchor(h) for h in headings}


# --- PromQL, LogQL, TraceQL -------------------------------------------------------------------

def test_every_alert_expression_parses_with_promql_parser(specs):
    rules = _rules(specs)
    assert rules
    for rule in rules:
        promql_parser.parse(rule["expr"])  # raises ValueError on a syntax error


def test_every_dashboard_and_alert_query_is_valid(dashboards, specs):
    assert catalog.query_problems(dashboards, specs) == []


def test_grafana_macros_are_stood_in_before_parsing():
    expr = 'sum(rate(x_total{namespace=~"$namespace"}[$__rate_interval])) by (${group})'
    rendered = catalog.promql_for_parsing(expr)
    assert "$" not in rendered
    promql_parser.parse(rendered)


def test_logql_targets_are_on_loki_with_a_stream_selector(dashboards):
    logs = [(stem, t) for stem, p, t, uid in catalog.iter_dashboard_targets(dashboards) if p["type"] == "logs"]
    assert {stem for stem, _ in logs} == set(catalog.PHASES), "every phase dashboard has a logs panel"
    for stem, target in logs:
        assert target["datasource"]["uid"] == "loki", stem
        assert catalog.logql_problem(target["expr"]) is None, (stem, target["expr"])
    for stem, panel, target, uid in catalog.iter_dashboard_targets(dashboards):
        if uid == "prometheus":
            # A LogQL pipeline on the Prometheus data source would be a wiring mistake.
            assert not re.search(r"\|\s*(json|logfmt|=|~)", target["expr"]), (stem, panel["title"])


def test_agents_dashboard_searches_traces_in_tempo(dashboards):
    tempo = [t for stem, p, t, uid in catalog.iter_dashboard_targets(dashboards) if stem == "agents" and uid == "tempo"]
    assert tempo and all(catalog.traceql_problem(t["query"]) is None for t in tempo)


def test_a_broken_alert_expression_is_reported(dashboards, specs):
    broken = copy.deepcopy(specs)
    rule = broken["storage"]["groups"][0]["rules"][0]
    rule["expr"] = "sum(rate(kubelet_volume_stats_available_bytes[5m]) by"
    problems = catalog.query_problems(dashboards, broken)
    assert len(problems) == 1
    assert "alerts/storage.yaml" in problems[0] and rule["alert"] in problems[0]


def test_a_broken_dashboard_query_is_reported(dashboards, specs):
    broken = copy.deepcopy(dashboards)
    prom_panel = next(p for p in broken["core"]["panels"] if p["datasource"]["uid"] == "prometheus")
    prom_panel["targets"][0]["expr"] = "histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m])"
    logs_panel = next(p for p in broken["mesh"]["panels"] if p["type"] == "logs")
    logs_panel["targets"][0]["expr"] = '|= "error"'
    tempo_panel = next(p for p in broken["agents"]["panels"] if p["datasource"]["uid"] == "tempo")
    tempo_panel["targets"][0]["query"] = "status=error"
    problems = catalog.query_problems(broken, specs)
    assert len(problems) == 3
    assert any("dashboards/core.json" in p and prom_panel["title"] in p for p in problems)
    assert any("dashboards/mesh.json" in p and "stream selector" in p for p in problems)
    assert any("dashboards/agents.json" in p and "span selector" in p for p in problems)


# --- alert rules ------------------------------------------------------------------------------

def test_every_alert_has_severity_summary_and_a_runbook_section(specs):
    anchors = runbook_anchors()
    for rule in _rules(specs):
        name = rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        assert rule["annotations"]["summary"].strip(), name
        assert rule["annotations"].get("description", "").strip(), name
        url = rule["annotations"]["runbook_url"]
        assert url.startswith("docs/runbooks/observability.md#"), name
        anchor = url.split("#", 1)[1]
        assert anchor in anchors, f"{name}: no heading in {RUNBOOK.name} for #{anchor}"


def test_alert_names_are_unique_and_expected_topics_are_covered(specs):
    names = [rule["alert"] for rule in _rules(specs)]
    assert len(names) == len(set(names))
    exprs = " ".join(rule["expr"] for rule in _rules(specs))
    for needle in (
        "vault_core_unsealed",
        "certmanager_certificate_expiration_timestamp_seconds",
        'consumergroup="clickhouse-audit", topic="platform.audit.v1"',
        "predict_linear(kubelet_volume_stats_available_bytes",
        "otelcol_receiver_refused_",
        "otelcol_exporter_enqueue_failed_",
        "prometheus_rule_evaluation_failures_total",
        "cnpg_pg_stat_archiver_failed_count",
        'reason="CrashLoopBackOff"',
    ):
        assert needle in exprs, needle
    # Every component has a down alert on its scrape job. Core's own monitors are matched by their
    # exact job; tests/core/test_core_monitoring.py checks those jobs against the monitors.
    job_matchers = re.findall(r'job\s*=~?\s*"([^"]*)"', exprs)
    for component in ("vault", "external-secrets", "cert-manager", "qdrant", "kafka", "clickhouse", "minio", "collector", "loki", "tempo", "grafana"):
        assert any(component in matcher for matcher in job_matchers), component
    assert "cnpg_collector_up" in exprs


def test_runbook_has_the_general_sections():
    anchors = runbook_anchors()
    for section in ("where-to-look-when-something-is-wrong", "how-to-add-a-service", "retention-and-cost-knobs"):
        assert section in anchors, section


@pytest.fixture(scope="module")
def prometheusrule_validator():
    assert SCHEMA.exists(), f"CRD schema not found at {SCHEMA}: ../shared/schemas/crds must sit beside the checkout"
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    # No check_schema(): the CRD carries Go regular expressions (``^(?i)(abort|warn)?$``) that
    # Python's ``re`` rejects as a meta-schema "regex" format; they only matter for fields the
    # rules here do not set.
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    return cls(schema)


def _as_object(stem: str, spec: dict) -> dict:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": f"somaagenthub-{stem}", "namespace": "soma-observability"},
        "spec": spec,
    }


def test_every_rule_file_is_a_valid_prometheusrule_spec(specs, prometheusrule_validator):
    for stem, spec in specs.items():
        errors = sorted(prometheusrule_validator.iter_errors(_as_object(stem, spec)), key=lambda e: list(e.path))
        assert not errors, f"{stem}.yaml: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_the_schema_check_catches_a_misplaced_field(specs, prometheusrule_validator):
    broken = copy.deepcopy(specs["certificates"])
    rule = broken["groups"][0]["rules"][0]
    rule["severity"] = rule["labels"].pop("severity")  # belongs under labels
    rule["for"] = "one hour"
    messages = [e.message for e in prometheusrule_validator.iter_errors(_as_object("certificates", broken))]
    assert any("severity" in m for m in messages)
    assert any("one hour" in m for m in messages)


def test_runbook_base_makes_links_absolute(values):
    specs = catalog.load_alert_groups(values, runbook_base="https://git.example/soma/blob/main/")
    for _, rule in catalog.iter_alert_rules(specs):
        assert rule["annotations"]["runbook_url"].startswith("https://git.example/soma/blob/main/docs/runbooks/observability.md#")


# --- structural validation of the files (the part the program relies on) -----------------------

def _copy_dir(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _edit_yaml(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def _edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data), encoding="utf-8")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s["groups"][0]["rules"][0]["annotations"].pop("runbook_url"), "no annotations.runbook_url"),
        (lambda s: s["groups"][0]["rules"][0]["annotations"].pop("summary"), "no annotations.summary"),
        (lambda s: s["groups"][0]["rules"][0].pop("for"), "has no 'for'"),
        (lambda s: s["groups"][0]["rules"][0].pop("expr"), "has no 'expr'"),
        (lambda s: s["groups"][0]["rules"][0]["labels"].update(severity="page"), "severity 'page'"),
        (lambda s: s["groups"][0]["rules"][0]["annotations"].update(runbook_url="https://wiki/x"), "expected 'docs/runbooks/observability.md#<anchor>'"),
        (lambda s: s.update(groups=[]), "non-empty 'groups'"),
    ],
)
def test_alert_loader_names_the_file_and_the_problem(tmp_path, values, change, message):
    directory = _copy_dir(OBS_DIR / "alerts", tmp_path / "alerts")
    _edit_yaml(directory / "workloads.yaml", change)
    with pytest.raises(ValueError) as caught:
        catalog.load_alert_groups(values, directory)
    assert "workloads.yaml" in str(caught.value)
    assert message in str(caught.value)


def test_alert_loader_refuses_duplicate_alert_names_and_bad_yaml(tmp_path, values):
    directory = _copy_dir(OBS_DIR / "alerts", tmp_path / "alerts")
    shutil.copy(directory / "workloads.yaml", directory / "zz-copy.yaml")
    with pytest.raises(ValueError, match=r"zz-copy\.yaml: alert 'PodCrashLooping' is already defined in workloads\.yaml"):
        catalog.load_alert_groups(values, directory)
    (directory / "zz-copy.yaml").write_text("groups: [\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"zz-copy\.yaml: not valid YAML"):
        catalog.load_alert_groups(values, directory)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("uid"), "missing 'uid'"),
        (lambda d: d.pop("title"), "missing 'title'"),
        (lambda d: d.update(panels=[]), "no 'panels'"),
        (lambda d: d["panels"][0].update(datasource={"type": "prometheus", "uid": "${DS}"}), "datasource uid '${DS}'"),
        (lambda d: d["panels"][0]["targets"][0].update(datasource={"type": "influxdb", "uid": "influx"}), "datasource uid 'influx'"),
        (lambda d: d["panels"][0].update(targets=[]), "has no targets"),
    ],
)
def test_dashboard_loader_names_the_file_and_the_problem(tmp_path, values, change, message):
    directory = _copy_dir(OBS_DIR / "dashboards", tmp_path / "dashboards")
    _edit_json(directory / "ops.json", change)
    with pytest.raises(ValueError) as caught:
        catalog.load_dashboards(values, directory)
    assert "ops.json" in str(caught.value)
    assert message in str(caught.value)


def test_dashboard_loader_refuses_duplicate_uids(tmp_path, values):
    directory = _copy_dir(OBS_DIR / "dashboards", tmp_path / "dashboards")
    _edit_json(directory / "ops.json", lambda d: d.update(uid="soma-core"))
    with pytest.raises(ValueError, match=r"uid 'soma-core' is already used by core\.json"):
        catalog.load_dashboards(values, directory)


# --- dashboards -------------------------------------------------------------------------------

def test_one_dashboard_per_phase_with_stable_unique_uids(dashboards):
    assert set(dashboards) == set(catalog.PHASES)
    uids = [d["uid"] for d in dashboards.values()]
    assert len(uids) == len(set(uids))
    for phase, dashboard in dashboards.items():
        assert dashboard["uid"] == f"soma-{phase}"
        assert dashboard["title"] == f"SomaAgentHub / {phase.capitalize()}"
        assert dashboard["schemaVersion"] >= 39
        assert "id" not in dashboard or dashboard["id"] is None, "ids are assigned by Grafana"
        assert len(dashboard["panels"]) <= 12, phase


def test_every_panel_uses_a_provisioned_datasource(dashboards):
    for phase, dashboard in dashboards.items():
        panel_ids = [p["id"] for p in dashboard["panels"]]
        assert len(panel_ids) == len(set(panel_ids)), phase
        for panel in dashboard["panels"]:
            assert panel["datasource"]["uid"] in {"prometheus", "loki", "tempo"}, (phase, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"]["uid"] == panel["datasource"]["uid"], (phase, panel["title"])


# --- metric provenance ------------------------------------------------------------------------

def _metric_names(expr: str) -> set[str]:
    names: set[str] = set()

    def visit(node):
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.add(node.name)
            for matcher in node.matchers.matchers:
                if matcher.name == "__name__":
                    # otelcol_receiver_refused_(spans|...)(_total)? -> otelcol_receiver_refused_(
                    names.add(matcher.value.split("(")[0] + ("(" if "(" in matcher.value else ""))

    promql_parser.walk(promql_parser.parse(catalog.promql_for_parsing(expr)), visit)
    return names


def test_every_metric_used_is_documented_with_its_source(dashboards, specs):
    doc = METRICS_DOC.read_text(encoding="utf-8")
    exprs = [rule["expr"] for rule in _rules(specs)]
    exprs += [t["expr"] for _, _, t, uid in catalog.iter_dashboard_targets(dashboards) if uid == "prometheus"]
    missing = set()
    for expr in exprs:
        for name in _metric_names(expr):
            base = re.sub(r"_(bucket|count|sum)$", "", name)
            if f"`{name}" not in doc and f"`{base}" not in doc:
                missing.add(name)
    assert not missing, f"add these to {METRICS_DOC.name} with where they were read: {sorted(missing)}"


# --- placeholders: what depends on the stack is filled from its settings ------------------------

def test_the_files_name_no_namespace_and_no_scrape_job_literally():
    """Namespaces and jobs are placeholders: a file that spells a stack's namespace would stay behind
    when the stack renames it. (tests/core/test_alerts_can_fire.py renders a renamed stack.)"""
    from tests.helpers import stack_document

    names = {ns["name"] for phase in ("core", "mesh", "governance", "agents", "ops")
             for ns in stack_document("prod")[f"somaagenthub:{phase}"]["namespaces"].values()}
    for path in [*sorted((OBS_DIR / "alerts").glob("*.yaml")), *sorted((OBS_DIR / "dashboards").glob("*.json"))]:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".json":
            text = text.replace(json.loads(text)["uid"], "")  # the uid soma-<phase> is an identifier, not a namespace
        assert not [n for n in names if n in text], path.name
        assert not re.search(r'job\s*=~?\s*"(?!\(?<<|\.\*)', text), f"{path.name}: a job matcher without a placeholder"


def test_prometheus_annotation_templates_are_left_alone(values):
    text = 'summary: "{{ $labels.namespace }}/{{ $labels.pod }} in <<ns.data>> has {{ $value }}"'
    assert catalog.fill(text, values) == f'summary: "{{{{ $labels.namespace }}}}/{{{{ $labels.pod }}}} in {values["ns.data"]} has {{{{ $value }}}}"'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('up{namespace="<<ns.dta>>"}', "unknown placeholder <<ns.dta>>"),
        ('up{namespace="<<data>>"}', "malformed placeholder <<data>>"),
        ('up{namespace="<< ns.data >>"}', "malformed placeholder << ns.data >>"),
        ('up{job="x"} >> 1', "a '<<' or '>>' that is not a placeholder"),
    ],
)
def test_an_unknown_or_malformed_placeholder_stops_the_load(tmp_path, values, text, message):
    directory = _copy_dir(OBS_DIR / "alerts", tmp_path / "alerts")
    _edit_yaml(directory / "workloads.yaml", lambda s: s["groups"][0]["rules"][0].update(expr=text))
    with pytest.raises(ValueError) as caught:
        catalog.load_alert_groups(values, directory)
    assert "workloads.yaml" in str(caught.value) and message in str(caught.value)


def test_a_value_that_would_break_out_of_its_string_is_refused(values):
    with pytest.raises(ValueError, match=r"<<ns.data>> has the unsafe value"):
        catalog.fill('up{namespace="<<ns.data>>"}', {**values, "ns.data": 'x"} or vector(1) or up{a="'}, "t.yaml")


def test_a_dashboard_placeholder_is_checked_the_same_way(tmp_path, values):
    directory = _copy_dir(OBS_DIR / "dashboards", tmp_path / "dashboards")
    _edit_json(directory / "ops.json", lambda d: d["panels"][0]["targets"][0].update(expr='up{namespace=~"<<namespaces.nowhere>>"}'))
    with pytest.raises(ValueError, match=r"ops\.json: unknown placeholder <<namespaces\.nowhere>>"):
        catalog.load_dashboards(values, directory)
