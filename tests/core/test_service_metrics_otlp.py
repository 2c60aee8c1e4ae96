"""The services' request metrics, from what a service really exports to the series the panels and alerts query.

The deployed path: a service on soma_service exports OTLP/gRPC to the collector (``SOMA_OTLP_ENDPOINT``), which
forwards the same data points over OTLP/HTTP to every Prometheus replica's OTLP receiver (collector.py); Prometheus
translates them with ``otlp.translationStrategy: UnderscoreEscapingWithSuffixes`` (prometheus.py).

No Prometheus that runs here has an OTLP receiver: Debian 12's is 2.42 (the receiver came in 2.47), and Debian's
2.53.3 (trixie) and 3.5.3 (sid) are built with it removed (their changelog: "Disable OTLP Ingestion endpoint.
This can be re-enabled once golang-opentelemetry-collector is in Debian (#1080354)"; neither accepts
``--enable-feature=otlp-write-receiver`` nor ``--web.enable-otlp-receiver``). So, as the brief allows:

1. a real service (the base's ``create_app`` with the kit's OTEL environment for the gateway) serves real requests
   and exports with its production gRPC exporter to a gRPC OTLP sink (opentelemetry-proto's own service stubs), the
   collector's place;
2. the exported data points are translated by the rules Prometheus documents for the pinned version
   (:func:`translate`, each rule with where it was read; the pinned v3.15.0 is not in the public snapshots
   reachable here, v3.14.0 is the newest);
3. the rendered request panels and service alerts are checked against those series (names and every label
   matcher), and ``promtool test rules`` runs the alerts on input series labelled exactly like them.

What this does not prove: that Prometheus' own code translates as documented (no binary with the receiver runs
here), and the collector's hop (its batch and memory-limiter processors do not rename anything).
"""
from __future__ import annotations

import asyncio
import os
import re
import shutil
import threading
import sys
from concurrent import futures
from pathlib import Path

import grpc
import promql_parser
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "apps/common/src") not in sys.path:
    sys.path.insert(0, str(REPO / "apps/common/src"))

from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc  # noqa: E402

from tests.core.test_alert_rules_promtool import PROMTOOL, run as promtool  # noqa: E402
from tests.core.test_alerts_can_fire import OPS  # noqa: E402
from tests.core.test_observability_as_code import catalog  # noqa: E402
from tests.scrapes import matches  # noqa: E402

POD = "gateway-6f7c9d8b5-x2k4q"
NAMESPACE = "soma-agents"
JOB = f"{NAMESPACE}/gateway"


# --- 1. a real service exports ------------------------------------------------------------------------------

class MetricsSink(metrics_service_pb2_grpc.MetricsServiceServicer):
    """Where the collector would be: keeps every ExportMetricsServiceRequest as it arrived."""

    def __init__(self):
        self.requests: list[metrics_service_pb2.ExportMetricsServiceRequest] = []
        self.lock = threading.Lock()

    def Export(self, request, context):  # noqa: N802 - gRPC method name
        with self.lock:
            self.requests.append(request)
        return metrics_service_pb2.ExportMetricsServiceResponse()


def kit_environment() -> dict[str, str]:
    """The OTEL variables the kit gives the gateway's pod (components/kit/observability.otel_env), with the pod name
    Kubernetes substitutes for ``$(K8S_POD_NAME)``."""
    from components.kit.context import Telemetry
    from components.kit.observability import otel_env

    telemetry = Telemetry(otlp_endpoint="http://opentelemetry-collector.soma-observability.svc.cluster.local:4317",
                          scraper_namespace="soma-observability")
    env = {e["name"]: e["value"] for e in otel_env("gateway", NAMESPACE, "prod", "0.1.0", telemetry, metrics="otlp") if "value" in e}
    return {k: v.replace("$(K8S_POD_NAME)", POD) for k, v in env.items() if k.startswith("OTEL_")}


@pytest.fixture(scope="module")
def exported():
    """Two exports of one gateway-named service: after a first batch of requests, and at shutdown after a second
    (cumulative counters, so Prometheus sees two samples per series and ``rate`` has something to work on)."""
    from fastapi import APIRouter, HTTPException
    from fastapi.testclient import TestClient
    from soma_service import ServiceSettings, create_app

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    sink = MetricsSink()
    metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(sink, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    router = APIRouter()

    @router.get("/v1/things/{thing}")
    async def thing(thing: str) -> dict:
        if thing == "broken":
            raise RuntimeError("a bug")  # answered by the base as a 500 internal_error
        if thing == "missing":
            raise HTTPException(404)
        if thing == "slow":
            await asyncio.sleep(0.3)
        return {"thing": thing}

    saved = {k: os.environ.get(k) for k in kit_environment()}
    os.environ.update(kit_environment())
    try:
        settings = ServiceSettings(service_name="gateway", service_version="0.1.0", otlp_endpoint=f"http://127.0.0.1:{port}",
                                   otlp_export_interval_ms=600_000)
        app = create_app(settings, routers=[router], configure_logging=False)
        with TestClient(app, raise_server_exceptions=False) as client:
            for path in ["/v1/things/a"] * 8 + ["/v1/things/broken"] * 2 + ["/healthz"]:
                client.get(path)
            app.state.telemetry.meter_provider.force_flush()
            for path in ["/v1/things/a"] * 5 + ["/v1/things/broken"] * 4 + ["/v1/things/missing", "/v1/things/slow", "/readyz"]:
                client.get(path)
        # leaving the client ran the base's shutdown, which flushed the second export
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.stop(grace=None)
    assert len(sink.requests) >= 2, "the service did not export twice"
    return sink.requests


# --- 2. Prometheus' documented translation ----------------------------------------------------------------------

# prometheus/otlptranslator v1.0.0 (the version prometheus v3.14.0's go.mod requires) metric_namer.go: ``unitMap``
# (excerpt: the units our services use and their neighbours) and ``normalizeName`` (UnderscoreEscapingWithSuffixes,
# the default of ``otlp.translation_strategy`` in docs/configuration/configuration.md and what prometheus.py sets).
UNIT_MAP = {"s": "seconds", "ms": "milliseconds", "By": "bytes", "%": "percent", "1": ""}


def metric_name(name: str, unit: str, kind: str) -> str:
    """``normalizeName``: split the name on every character outside [a-zA-Z0-9] (so dots go), add the main unit's
    word unless already a token (a unit in braces, an annotation, adds nothing), ``_total`` for a monotonic sum,
    ``_ratio`` for a gauge of unit 1."""
    tokens = [t for t in re.split(r"[^a-zA-Z0-9]+", name) if t]
    main, _, per = re.sub(r"\{[^}]*\}", "", unit).partition("/")
    word = UNIT_MAP.get(main, main) if main else ""
    if word and word not in tokens:
        tokens.append(word)
    if per:
        tokens += ["per", {"s": "second", "m": "minute", "h": "hour", "d": "day"}.get(per, per)]
    if kind == "counter":
        tokens = [t for t in tokens if t != "total"] + ["total"]
    if unit == "1" and kind == "gauge":
        tokens = [t for t in tokens if t != "ratio"] + ["ratio"]
    return "_".join(tokens)


def label_name(key: str) -> str:
    """otlptranslator ``LabelNamer`` without UTF-8: every character outside [a-zA-Z0-9_] becomes ``_``."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", key)


def value_of(any_value) -> str:
    field = any_value.WhichOneof("value")
    return str(getattr(any_value, field)) if field else ""


def resource_labels(resource) -> dict[str, str]:
    """prometheus v3.14.0 storage/remote/otlptranslator/prometheusremotewrite/metrics_to_prw.go: ``job`` is
    ``service.namespace + "/" + service.name`` (just the name without a namespace), ``instance`` is
    ``service.instance.id``; other resource attributes are not labels (``promote_resource_attributes`` is empty by
    default and prometheus.py sets none): they go to ``target_info``."""
    attributes = {a.key: value_of(a.value) for a in resource.attributes}
    labels = {}
    if "service.name" in attributes:
        namespace = attributes.get("service.namespace")
        labels["job"] = f"{namespace}/{attributes['service.name']}" if namespace else attributes["service.name"]
    if "service.instance.id" in attributes:
        labels["instance"] = attributes["service.instance.id"]
    return labels


def bound(value: float) -> str:
    """helper.go formats a bucket bound with ``strconv.FormatFloat(bound, 'f', -1, 64)``: the shortest form."""
    return repr(float(value)).removesuffix(".0") if float(value) == int(value) else repr(float(value))


def translate(requests) -> list[tuple[str, dict[str, str], int, float]]:
    """(name, labels, unix-nanosecond time, value) of every sample Prometheus would store. helper.go
    (``addHistogramDataPoints``): an explicit-bucket histogram becomes ``<name>_sum``, ``<name>_count`` and one
    cumulative ``<name>_bucket`` per bound (label ``le``) plus ``le="+Inf"``; number_data_points.go: a monotonic
    cumulative sum is a counter, a non-monotonic one a gauge."""
    samples = []
    for request in requests:
        for rm in request.resource_metrics:
            base = resource_labels(rm.resource)
            for sm in rm.scope_metrics:
                for metric in sm.metrics:
                    kind = metric.WhichOneof("data")
                    if kind == "histogram":
                        name = metric_name(metric.name, metric.unit, "histogram")
                        for point in metric.histogram.data_points:
                            labels = {**{label_name(a.key): value_of(a.value) for a in point.attributes}, **base}
                            t = point.time_unix_nano
                            samples += [(f"{name}_sum", labels, t, point.sum), (f"{name}_count", labels, t, float(point.count))]
                            cumulative = 0
                            for b, count in zip(point.explicit_bounds, point.bucket_counts):
                                cumulative += count
                                samples.append((f"{name}_bucket", {**labels, "le": bound(b)}, t, float(cumulative)))
                            samples.append((f"{name}_bucket", {**labels, "le": "+Inf"}, t, float(point.count)))
                    elif kind in ("sum", "gauge"):
                        data = getattr(metric, kind)
                        counter = kind == "sum" and data.is_monotonic
                        name = metric_name(metric.name, metric.unit, "counter" if counter else "gauge")
                        for point in data.data_points:
                            labels = {**{label_name(a.key): value_of(a.value) for a in point.attributes}, **base}
                            value = point.as_double if point.WhichOneof("value") == "as_double" else float(point.as_int)
                            samples.append((name, labels, point.time_unix_nano, value))
    return samples


@pytest.fixture(scope="module")
def series(exported) -> list[tuple[str, dict[str, str], int, float]]:
    return translate(exported)


def latest(series, name: str, **labels: str) -> float:
    found = [(t, v) for n, l, t, v in series if n == name and all(l.get(k) == want for k, want in labels.items())]
    assert found, f"no {name} {labels}"
    last = max(t for t, _ in found)
    return sum(v for t, v in found if t == last)


def test_the_translation_rules_give_the_names_prometheus_documents():
    """The examples otlptranslator's own documentation gives (metric_namer.go doc comments, README)."""
    assert metric_name("http.server.duration", "s", "histogram") == "http_server_duration_seconds"
    assert metric_name("requests.count", "1", "counter") == "requests_count_total"
    assert metric_name("memory.usage", "By", "gauge") == "memory_usage_bytes"
    assert metric_name("http.server.active_requests", "{request}", "gauge") == "http_server_active_requests"
    assert metric_name("cpu.utilization", "1", "gauge") == "cpu_utilization_ratio"
    assert bound(0.005) == "0.005" and bound(1.0) == "1" and bound(10) == "10"


def test_the_service_exports_the_request_histogram_under_the_names_the_panels_use(series):
    names = {n for n, *_ in series}
    assert {"http_server_request_duration_seconds_bucket", "http_server_request_duration_seconds_count",
            "http_server_request_duration_seconds_sum", "http_server_active_requests"} <= names
    labels = {k for n, l, *_ in series if n == "http_server_request_duration_seconds_count" for k in l}
    assert labels == {"job", "instance", "http_request_method", "http_route", "http_response_status_code"}
    assert {l["job"] for _, l, _, _ in series} == {JOB}
    assert {l["instance"] for _, l, _, _ in series} == {POD}
    # what the requests were: the route template, not the path; the crash as a 500, probes under their own routes
    count = "http_server_request_duration_seconds_count"
    assert latest(series, count, http_route="/v1/things/{thing}", http_response_status_code="200") == 14
    assert latest(series, count, http_route="/v1/things/{thing}", http_response_status_code="500") == 6
    assert latest(series, count, http_route="/v1/things/{thing}", http_response_status_code="404") == 1
    assert latest(series, count, http_route="/healthz") == 1 and latest(series, count, http_route="/readyz") == 1


def test_the_latency_buckets_resolve_milliseconds_to_seconds(series):
    """The OpenTelemetry HTTP buckets (soma_service.middleware.DURATION_BUCKETS), not the SDK's default 0, 5, 10 ...
    boundaries, which would put every request under 5 s in one bucket; the slow request sits above 0.25 s."""
    bounds = {l["le"] for n, l, *_ in series if n == "http_server_request_duration_seconds_bucket"}
    assert {"0.005", "0.1", "0.25", "0.5", "1", "10", "+Inf"} <= bounds and "7500" not in bounds
    ok = dict(http_route="/v1/things/{thing}", http_response_status_code="200")
    bucket = "http_server_request_duration_seconds_bucket"
    assert latest(series, bucket, le="0.25", **ok) == 13 and latest(series, bucket, le="0.5", **ok) == 14


# --- 3. the panels and alerts select those series -----------------------------------------------------------

@pytest.fixture(scope="module")
def values() -> dict[str, str]:
    from tests.helpers import rule_values

    return rule_values("prod")


def pushed_selectors(values) -> list[tuple[str, str, tuple]]:
    """(where, metric, matchers) of every selector of the rendered dashboards and alert files on a pushed metric."""
    from components.core.observability import producers

    exprs = [(f"alerts/{stem}: {rule['alert']}", rule["expr"]) for stem, rule in catalog.iter_alert_rules(catalog.load_alert_groups(values))]
    exprs += [(f"{uid_or_file}: {panel['title']}", target["expr"])
              for uid_or_file, panel, target, uid in catalog.iter_dashboard_targets(catalog.load_dashboards(values)) if uid == "prometheus"]
    found = []
    for where, expr in exprs:
        def visit(node, where=where):
            if isinstance(node, promql_parser.VectorSelector) and node.name and producers.pushed_of(node.name):
                found.append((where, node.name, tuple((m.name, OPS[str(m.op)], m.value) for m in node.matchers.matchers
                                                      if m.name != "__name__")))
        promql_parser.walk(promql_parser.parse(catalog.promql_for_parsing(expr)), visit)
    return found


def unmatched(selectors, series) -> list[str]:
    """Selectors no translated series satisfies (name and every matcher; an absent label is the empty string)."""
    return [f"{where}: {name}{list(matchers)}" for where, name, matchers in selectors
            if not any(n == name and all(matches(op, value, labels.get(label, "")) for label, op, value in matchers)
                       for n, labels, _, _ in series)]


def test_every_request_panel_and_service_alert_selects_series_the_service_exports(values, series):
    selectors = pushed_selectors(values)
    wheres = {w.split(":")[0] for w, *_ in selectors}
    assert "alerts/services" in wheres and any("agents" in w for w in wheres), wheres
    assert len(selectors) >= 8
    assert unmatched(selectors, series) == []


def chaos_selectors() -> list[tuple[str, str, tuple]]:
    """(where, metric, matchers) of every selector on a pushed metric in the resilience Workflow's hypotheses
    (components/ops/experiments.py), for the agents namespace the exported series were made in. The export is the
    gateway's: a hypothesis about another service is read as the same query about the gateway (its ``job`` value
    ``<namespace>/<service>`` becomes ``<namespace>/gateway``), so only its labels and label values are checked."""
    from components.core.observability import producers
    from components.ops import experiments

    found = []
    for experiment in experiments.EXPERIMENTS:
        if "{ns.agents.agents}" not in experiment.hypothesis:
            continue
        service = experiment.target.pods[experiments.NAME_LABEL]
        query = experiments.placeholders(experiment.hypothesis, {"agents.agents": NAMESPACE})
        query = query.replace(f'"{NAMESPACE}/{service}"', f'"{NAMESPACE}/gateway"')

        def visit(node, where=f"chaos/{experiment.name}"):
            if isinstance(node, promql_parser.VectorSelector) and node.name and producers.pushed_of(node.name):
                found.append((where, node.name, tuple((m.name, OPS[str(m.op)], m.value) for m in node.matchers.matchers
                                                      if m.name != "__name__")))
        promql_parser.walk(promql_parser.parse(query), visit)
    return found


def test_every_chaos_hypothesis_on_a_service_selects_series_the_service_exports(series):
    """A hypothesis that selects no exported series is absent, so its StatusCheck fails on every run."""
    selectors = chaos_selectors()
    assert {where for where, *_ in selectors} == {"chaos/gateway-openfga-partition", "chaos/memory-qdrant-delay",
                                                  "chaos/orchestrator-kill"}
    assert unmatched(selectors, series) == []


def test_a_selector_on_a_label_the_translation_does_not_make_is_caught(values, series):
    """``namespace`` (a resource attribute, not promoted) and the scrape-style name without the unit miss."""
    probes = [("probe", "http_server_request_duration_seconds_count", (("namespace", "=~", "soma-agents"),)),
              ("probe", "http_server_request_duration_count", ()),
              ("probe", "http_server_request_duration_seconds_count", (("job", "=~", "(soma-agents)/.+"),))]
    assert unmatched(probes, series) == ["probe: http_server_request_duration_seconds_count[('namespace', '=~', 'soma-agents')]",
                                         "probe: http_server_request_duration_count[]"]


# --- promtool: the alerts fire on such series, and stay quiet on healthy ones -------------------------------------

needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not found (PROMTOOL, PATH, build/bin): `make promtool` takes it from Debian's prometheus package")
BUCKETS = ("0.005", "0.01", "0.025", "0.05", "0.075", "0.1", "0.25", "0.5", "0.75", "1", "2.5", "5", "7.5", "10", "+Inf")


def exported_labels(series, **values: str) -> dict[str, str]:
    """The label set of an exported request series, with some values changed: input series are written with the
    names and labels the service really produced, not by hand."""
    (labels, *_) = [l for n, l, *_ in series if n == "http_server_request_duration_seconds_count"
                    and l["http_response_status_code"] == "200" and l["http_route"] != "/healthz"]
    assert set(values) <= set(labels)
    return {**labels, **values}


def input_series(name: str, labels: dict[str, str], values: str) -> dict:
    return {"series": name + "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items())) + "}", "values": values}


def traffic(series, job: str, ok: int, errors: int, probe_errors: int = 0, slow: bool = False) -> list[dict]:
    """Per minute: ``ok`` 200s and ``errors`` 500s on the API route, ``probe_errors`` 500s on /readyz; every API
    request under 25 ms, or (``slow``) between 1 s and 2.5 s."""
    api = exported_labels(series, job=job)
    out = [input_series("http_server_request_duration_seconds_count", {**api, "http_response_status_code": "200"}, f"0+{ok}x60"),
           input_series("http_server_request_duration_seconds_count", {**api, "http_response_status_code": "500"}, f"0+{errors}x60")]
    if probe_errors:
        probe = {**api, "http_route": "/readyz", "http_response_status_code": "500"}
        out.append(input_series("http_server_request_duration_seconds_count", probe, f"0+{probe_errors}x60"))
    fast_from = BUCKETS.index("2.5") if slow else BUCKETS.index("0.025")
    for i, le in enumerate(BUCKETS):
        out.append(input_series("http_server_request_duration_seconds_bucket", {**api, "http_response_status_code": "200", "le": le},
                                f"0+{ok if i >= fast_from else 0}x60"))
    return out


def rule_test(series) -> dict:
    bad, slow, healthy = "soma-agents/gateway", "soma-agents/orchestrator", "soma-governance/audit-shipper"
    fires = lambda job, severity: [{"exp_labels": {"severity": severity, "job": job}}]
    return {"rule_files": ["services.yaml"], "evaluation_interval": "1m", "tests": [
        {"name": "10% server errors on the gateway: ServiceErrorRatioHigh for it alone; the slow orchestrator: latency only",
         "interval": "1m",
         "input_series": [*traffic(series, bad, ok=54, errors=6), *traffic(series, slow, ok=60, errors=0, slow=True),
                          *traffic(series, healthy, ok=600, errors=1, probe_errors=120)],
         "alert_rule_test": [
             {"eval_time": "5m", "alertname": "ServiceErrorRatioHigh", "exp_alerts": []},  # pending: 10 minutes first
             {"eval_time": "25m", "alertname": "ServiceErrorRatioHigh", "exp_alerts": fires(bad, "critical")},
             {"eval_time": "35m", "alertname": "ServiceLatencyP99High", "exp_alerts": fires(slow, "warning")},
         ]},
        {"name": "quiet: few requests (errors or not), probe failures, fast answers",
         "interval": "1m",
         "input_series": [*traffic(series, bad, ok=2, errors=2), *traffic(series, healthy, ok=600, errors=1, probe_errors=120)],
         "alert_rule_test": [
             {"eval_time": "40m", "alertname": "ServiceErrorRatioHigh", "exp_alerts": []},
             {"eval_time": "40m", "alertname": "ServiceLatencyP99High", "exp_alerts": []},
         ]},
    ]}


@pytest.fixture(scope="module")
def rules_folder(values, series, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("service-alerts")
    spec = yaml.safe_load(yaml.safe_dump(catalog.load_alert_groups(values)["services"]))
    for group in spec["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations")  # promtool compares annotations verbatim; they do not decide firing
    (folder / "services.yaml").write_text(yaml.safe_dump(spec))
    (folder / "tests.yaml").write_text(yaml.safe_dump(rule_test(series), sort_keys=False))
    return folder



@needs_promtool
def test_the_service_alerts_fire_on_bad_series_and_stay_quiet_on_healthy_ones(rules_folder):
    result = promtool("test", "rules", "tests.yaml", cwd=rules_folder)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_fails_the_test_when_the_alert_reads_the_wrong_label(rules_folder, tmp_path):
    """Not a rubber stamp: the rules matching a ``namespace`` label (which pushed series lack) fire on nothing."""
    for name in ("services.yaml", "tests.yaml"):
        shutil.copy(rules_folder / name, tmp_path / name)
    rules = tmp_path / "services.yaml"
    rules.write_text(rules.read_text().replace('job=~', 'namespace=~'))
    result = promtool("test", "rules", "tests.yaml", cwd=tmp_path)
    assert result.returncode != 0 and "ServiceErrorRatioHigh" in result.stdout + result.stderr
