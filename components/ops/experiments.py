"""The platform's resilience experiments, declared once, and the Chaos Mesh Workflow made from them.

Each experiment is one fault with a bounded blast radius (one namespace, the platform's own labels,
mode ``one``, a duration) and a steady-state hypothesis in PromQL over metrics the platform really
exports (docs/observability-metrics.md). The Workflow runs them in series (Chaos Mesh v2.8.2,
charts/chaos-mesh/crds/chaos-mesh.org_workflows.yaml): first a check that every hypothesis holds
before any fault, then each fault followed by the check of its hypothesis. A check that fails aborts
the Workflow (``abortWithStatusCheck``), so no further fault is injected into a platform that did not
recover.

Why a PromQL hypothesis can be a Chaos Mesh StatusCheck at all: an HTTP StatusCheck judges only the
response's status code (``criteria.statusCode``), and Prometheus answers 200 to any valid query, true
or not. So the query sent is :func:`guard`: empty (200) while the hypothesis holds, and an execution
error (Prometheus' HTTP API answers 422 "when an expression can't be executed") when it does not, or
when its metrics are missing. tests/ops/test_chaos_hypotheses.py runs every guard through promtool.
"""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

API_VERSION = "chaos-mesh.org/v1alpha1"
NAME_LABEL = "app.kubernetes.io/name"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
CHECK_INTERVAL_SECONDS = 15
CHECK_TIMEOUT_SECONDS = 10
SUCCESS_THRESHOLD = 2
"""Consecutive passing queries before a check passes: one good scrape is not a recovery."""
STEADY_STATE = "steady-state"
RELEASE_ANNOTATION = "somaagenthub.io/release"
"""The Workflow's annotation naming the release it tests (components/ops/chaos.py writes it, tools/ops/chaos_results.py
reads it into the stage result)."""


@dataclass(frozen=True)
class Target:
    """Where a fault lands: pods by the platform's labels in one namespace, named ``<phase>.<purpose>``."""

    namespace: str
    pods: Mapping[str, str]

    def selector(self, namespaces: Mapping[str, str]) -> dict[str, Any]:
        return {"namespaces": [namespaces[self.namespace]], "labelSelectors": dict(self.pods)}


@dataclass(frozen=True)
class Experiment:
    """One fault, its blast radius, its hypothesis and what should happen.

    ``needs``: the components that must be deployed for the fault to select any pod (else the experiment
    is left out of the Workflow, and docs/chaos.md says so); ``recovery``: how long the platform has,
    after the fault, to satisfy the hypothesis again before the Workflow aborts; ``hypothesis``: PromQL
    that returns a series while the steady state holds, with ``{ns.<phase>.<purpose>}`` placeholders;
    ``local_test``: the test in this repository that shows the application behaviour the hypothesis
    relies on (a pytest node id), or empty where only a cluster can show it.
    """

    name: str
    kind: str
    target: Target
    fault: Mapping[str, Any]
    hypothesis: str
    hypothesis_text: str
    expected: str
    needs: tuple[str, ...]
    recovery_seconds: int = 120
    duration: str | None = None
    peer: Target | None = None
    local_test: str = ""

    @property
    def template_field(self) -> str:
        """The Workflow template's field for this kind: ``podChaos``, ``networkChaos``."""
        return self.kind[0].lower() + self.kind[1:]


PROBE_ROUTES = "/healthz|/readyz"
"""The kubelet's probes, answered 200 every few seconds whatever else fails: left out of the request hypotheses, as
the service alerts leave them out (components/core/observability/alerts/services.yaml), or they would dilute a 5xx
share and make "no traffic" never true."""


def _requests(service: str) -> str:
    """The matchers of an agents service's requests in its pushed metrics: ``job`` is ``<namespace>/<service>``, its
    OTLP ``service.namespace`` and ``service.name``. Pushed series carry no ``namespace`` label
    (components/core/observability/producers.Pushed): a hypothesis that selected on one would find no data and fail
    every run."""
    return f'job="{{ns.agents.agents}}/{service}", http_route!~"{PROBE_ROUTES}"'


def _http_errors(service: str) -> str:
    """``service``'s 5xx share over 2m is under 5%, or it served no request in that time, or it never answered a 5xx
    (no such series). Empty when its request metrics are missing, so a broken export fails the check."""
    requests = f"http_server_request_duration_seconds_count{{{_requests(service)}}}"
    errors = requests[:-1] + ', http_response_status_code=~"5.."}'
    total, failed = f"sum(rate({requests}[2m]))", f"sum(rate({errors}[2m]))"
    return f"({failed} / {total} < 0.05) or ({total} == 0) or ({total} unless {failed})"


EXPERIMENTS: tuple[Experiment, ...] = (
    Experiment(
        name="vault-standby-kill",
        kind="PodChaos",
        target=Target("core.secrets", {NAME_LABEL: "vault", "vault-active": "false"}),
        fault={"action": "pod-kill", "mode": "one", "gracePeriod": 0},
        hypothesis='min(vault_core_unsealed{namespace="{ns.core.secrets}"}) == 1',
        hypothesis_text="every Vault server Prometheus scrapes reports itself unsealed (the restarted standby auto-unseals and rejoins)",
        expected="the active server keeps serving; the killed standby restarts, auto-unseals and rejoins the Raft cluster",
        needs=("vault",),
    ),
    Experiment(
        name="vault-active-kill",
        kind="PodChaos",
        target=Target("core.secrets", {NAME_LABEL: "vault", "vault-active": "true"}),
        fault={"action": "pod-kill", "mode": "one", "gracePeriod": 0},
        hypothesis='min(vault_core_unsealed{namespace="{ns.core.secrets}"}) == 1',
        hypothesis_text="every Vault server is unsealed again (a standby took over, the old active rejoined as a standby)",
        expected="a standby becomes active within Raft's election timeout; External Secrets retries; no secret is lost",
        needs=("vault",),
    ),
    Experiment(
        name="postgres-primary-failover",
        kind="PodChaos",
        target=Target("core.data", {"cnpg.io/cluster": "app-db", "cnpg.io/instanceRole": "primary"}),
        fault={"action": "pod-kill", "mode": "one", "gracePeriod": 0},
        hypothesis='min(cnpg_collector_up{namespace="{ns.core.data}", cluster="app-db"}) == 1',
        hypothesis_text="every PostgreSQL instance of app-db answers its exporter (the promoted replica serves, the old primary rejoined)",
        expected="CloudNativePG promotes the most advanced replica and moves the -rw Service to it; clients reconnect",
        needs=("postgres",),
        recovery_seconds=180,
    ),
    Experiment(
        name="kafka-broker-kill",
        kind="PodChaos",
        target=Target("core.data", {"strimzi.io/cluster": "platform", "strimzi.io/broker-role": "true"}),
        fault={"action": "pod-kill", "mode": "one", "gracePeriod": 0},
        hypothesis='sum(kafka_topic_partition_under_replicated_partition{namespace="{ns.core.data}"}) == 0',
        hypothesis_text="no partition is under-replicated once the broker is back (Kafka Exporter's view of every topic)",
        expected="partition leaders move to the surviving brokers; producers with acks=all retry; the broker restarts and catches up",
        needs=("kafka",),
        recovery_seconds=300,
    ),
    Experiment(
        name="gateway-openfga-partition",
        kind="NetworkChaos",
        target=Target("agents.agents", {NAME_LABEL: "gateway"}),
        peer=Target("governance.governance", {NAME_LABEL: "openfga"}),
        fault={"action": "partition", "mode": "one", "direction": "to"},
        duration="2m",
        hypothesis=_http_errors("gateway"),
        hypothesis_text="after the partition the gateway's 5xx share is back under 5% (or it had no traffic)",
        expected="while partitioned, the gateway pod refuses every request that needs an authorization answer "
                 "(fails closed: 503, never a pass-through); after it, it serves again",
        needs=("gateway", "openfga"),
        recovery_seconds=240,   # the 2m rate window still holds the partition's 503s for two minutes after it
        local_test="apps/gateway/tests/test_gateway_partition.py",
    ),
    Experiment(
        name="memory-qdrant-delay",
        kind="NetworkChaos",
        target=Target("agents.agents", {NAME_LABEL: "memory"}),
        peer=Target("core.data", {NAME_LABEL: "qdrant"}),
        fault={"action": "delay", "mode": "one", "direction": "to",
               "delay": {"latency": "200ms", "jitter": "50ms", "correlation": "25"}},
        duration="3m",
        hypothesis=f'histogram_quantile(0.99, sum by (le) (rate(http_server_request_duration_seconds_bucket{{{_requests("memory")}}}[2m]))) < 2'
                   f' or (sum(rate(http_server_request_duration_seconds_count{{{_requests("memory")}}}[2m])) == 0)',
        hypothesis_text="the memory gateway's p99 latency is under 2 s again (or it had no traffic)",
        expected="queries slow down by the injected latency but stay within their timeout; none fails",
        needs=("memory", "qdrant"),
    ),
    Experiment(
        name="orchestrator-kill",
        kind="PodChaos",
        target=Target("agents.agents", {NAME_LABEL: "orchestrator"}),
        fault={"action": "pod-kill", "mode": "one", "gracePeriod": 0},
        hypothesis=_http_errors("orchestrator"),
        hypothesis_text="the orchestrator's 5xx share is back under 5% (or it had no traffic)",
        expected="runs in flight on the killed pod resume from their last PostgreSQL checkpoint on another pod; none restarts from scratch",
        needs=("orchestrator",),
        local_test="apps/orchestrator/tests/test_orchestrator_kill.py",
    ),
)


def placeholders(query: str, namespaces: Mapping[str, str]) -> str:
    """``{ns.<phase>.<purpose>}`` replaced by that namespace's name; an unknown one is an error."""

    def name(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in namespaces:
            raise KeyError(f"hypothesis names namespace {key!r}, which this stack does not have")
        return namespaces[key]

    return re.sub(r"\{ns\.([a-z]+\.[A-Za-z]+)\}", name, query)


def guard(hypotheses: Sequence[str]) -> str:
    """PromQL that is empty while every hypothesis returns a series, and fails to execute otherwise.

    ``absent(h)`` is one series exactly when ``h`` returns none (false, or its metrics missing). Two
    copies of that series, told apart by a label, on the "one" side of a ``group_left`` match make the
    match group ambiguous: Prometheus refuses to execute the query ("found duplicate series for the match
    group"), and its HTTP API answers 422 instead of 200.
    """
    violated = " or ".join(f"absent({h})" for h in hypotheses)
    return (f'vector(1) * on() group_left() (label_replace(({violated}), "copy", "a", "", "")'
            f' or label_replace(({violated}), "copy", "b", "", ""))')


def query_url(prometheus_url: str, promql: str) -> str:
    return f"{prometheus_url}/api/v1/query?query={quote(promql, safe='')}"


def status_check(name: str, url: str, recovery_seconds: int) -> dict[str, Any]:
    """A synchronous HTTP check that fails after ``recovery_seconds`` of failed queries, and aborts the Workflow."""
    failures = max(2, recovery_seconds // CHECK_INTERVAL_SECONDS)
    return {
        "name": name,
        "templateType": "StatusCheck",
        "deadline": f"{recovery_seconds + 2 * CHECK_INTERVAL_SECONDS * SUCCESS_THRESHOLD}s",
        "abortWithStatusCheck": True,
        "statusCheck": {
            "mode": "Synchronous",
            "type": "HTTP",
            "intervalSeconds": CHECK_INTERVAL_SECONDS,
            "timeoutSeconds": CHECK_TIMEOUT_SECONDS,
            "failureThreshold": failures,
            "successThreshold": SUCCESS_THRESHOLD,
            "http": {"url": url, "method": "GET", "criteria": {"statusCode": "200"}},
        },
    }


def fault_template(experiment: Experiment, namespaces: Mapping[str, str]) -> dict[str, Any]:
    spec: dict[str, Any] = {**experiment.fault, "selector": experiment.target.selector(namespaces)}
    if experiment.peer is not None:
        spec["target"] = {"mode": "all", "selector": experiment.peer.selector(namespaces)}
    if experiment.duration:
        spec["duration"] = experiment.duration
    # a pod-kill is instant; the node still needs a deadline to hand over to the check
    deadline = experiment.duration or "30s"
    return {"name": experiment.name, "templateType": experiment.kind, "deadline": deadline, experiment.template_field: spec}


def run_name(release: str) -> str:
    """``resilience-<12 hex of the release id>``: each promoted release is a new Workflow, so a new run."""
    digest = release.removeprefix("sha256:")
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise ValueError(f"release {release!r} is not a release id (sha256:<64 hex>)")
    return f"resilience-{digest[:12]}"


def selected(experiments: Sequence[Experiment], deployed: set[str]) -> tuple[Experiment, ...]:
    return tuple(e for e in experiments if set(e.needs) <= deployed)


def workflow_spec(experiments: Sequence[Experiment], namespaces: Mapping[str, str], prometheus_url: str,
                  deadline: str) -> dict[str, Any]:
    """The Workflow's spec: the steady state first, then each fault and its check, in series."""
    if not experiments:
        raise ValueError("no experiment selects a deployed component")
    names = [e.name for e in experiments]
    if len(set(names)) != len(names) or not all(DNS_LABEL.match(n) for n in names):
        raise ValueError(f"experiment names must be unique DNS labels: {names}")
    hypotheses = [placeholders(e.hypothesis, namespaces) for e in experiments]
    every = list(dict.fromkeys(hypotheses))
    steady = status_check(STEADY_STATE, query_url(prometheus_url, guard(every)), 2 * CHECK_INTERVAL_SECONDS)
    children, templates = [STEADY_STATE], [steady]
    for experiment, hypothesis in zip(experiments, hypotheses):
        check = f"{experiment.name}-check"
        children += [experiment.name, check]
        templates += [fault_template(experiment, namespaces),
                      status_check(check, query_url(prometheus_url, guard([hypothesis])), experiment.recovery_seconds)]
    entry = {"name": "resilience", "templateType": "Serial", "deadline": deadline, "children": children}
    return {"entry": "resilience", "templates": [entry, *templates]}

