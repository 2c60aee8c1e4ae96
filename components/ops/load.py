"""k6 load tests in the cluster (issue 16 point 2): the k6 operator from its official chart, the scenario scripts
in a ConfigMap, one TestRun per scenario against the gateway's Service, and the flows they need.

The operator is grafana/k6-operator's chart (vendored, ``charts/k6-operator``), namespaced: its RBAC is a Role in
the ops namespace (``rbac.namespaced``), it watches that namespace only (the chart's ``WATCH_NAMESPACE``), and its
controller runs non-root and read-only with requests and limits. Its CRDs are chart templates (``installCRDs``),
so the TestRuns wait for the chart. The TestRuns come from components/ops/scenarios.yaml through
components/ops/k6.py; the stack's ``ops.loadTests`` chooses the scenarios and scales their rates. The bearer
token the gateway requires is delivered from Vault by External Secrets (the caller passes the Secret) and reaches
the runner pods only.

Creating a TestRun starts it: ``pulumi up`` with ``ops.loadTests`` set runs the load once per change of a
TestRun (the scripts, the scale, the release's images). docs/load-tests.md says how to run it again and read the
results (``python -m tools.ops.k6_summary`` over the runner logs).
"""
from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.core.interfaces import SecretRef
from components.kit import KitContext, Peer, allow_egress, allow_ingress, custom_resource, helm_chart, recommended
from components.kit.security import container_security_context, pod_security_context, resource_requirements
from components.ops import k6
from components.ops.scenarios import Scenario, load, select
from components.settings import LoadTestSettings

CHART_KEY = RELEASE = "k6-operator"
CONTROLLER_LABELS = {"app.kubernetes.io/name": "k6-operator", "app.kubernetes.io/instance": RELEASE}
"""The chart's selector labels of the controller pods (templates/_helpers.tpl ``k6-operator.selectorLabels``)."""
CONTROLLER_UID = 65532
"""Dockerfile.controller at v1.6.0: distroless ``nonroot``, ``USER 65532:65532``."""
SERVICE_ACCOUNT = "k6-load-test"
"""The TestRun pods' ServiceAccount: no token, no RBAC; its own so that nothing else's identity is borrowed."""
POD_NAME = "k6-load-test"
RUNNER_LABELS = {"app.kubernetes.io/name": POD_NAME, "app.kubernetes.io/component": "runner"}
INITIALIZER_LABELS = {"app.kubernetes.io/name": POD_NAME, "app.kubernetes.io/component": "initializer"}
STARTER_LABELS = {"app.kubernetes.io/name": POD_NAME, "app.kubernetes.io/component": "starter"}
K6_API_PORT = 6565
"""Each runner's REST API: the controller reads ``/v1/status``, the starter and stopper PATCH it."""
API_SERVER_PORTS = (443, 6443)
SCRIPTS = "k6-load-test-scripts"
TOKEN_KEY = "token"


def chart_values(settings: LoadTestSettings, ctx: KitContext) -> dict[str, Any]:
    image = ctx.catalog.image("k6-operator-controller")
    return {
        "namespace": {"create": False},
        "installCRDs": True,
        "rbac": {"namespaced": True},
        # the metrics endpoint is behind the API server's authentication (a TokenReview Role the chart makes); nothing
        # scrapes it here, so no Service for it
        "service": {"enabled": False},
        "metrics": {"serviceMonitor": {"enabled": False}},
        "podLabels": {"app.kubernetes.io/part-of": "somaagenthub", "app.kubernetes.io/component": "controller"},
        "manager": {
            "replicas": 1,
            "logging": {"development": False},
            "image": {"registry": image.registry, "repository": image.repository, "tag": image.tag_at_digest},
            "serviceAccount": {"name": "k6-operator-controller", "create": True},
            "resources": resource_requirements(settings.operator),
            "podSecurityContext": pod_security_context(CONTROLLER_UID),
            "containerSecurityContext": container_security_context(uid=CONTROLLER_UID),
        },
    }


def scenarios_for(settings: LoadTestSettings) -> tuple[Scenario, ...]:
    """The stack's scenarios at its scale (settings checked the names)."""
    return tuple(s.scaled(settings.rate_scale) for s in select(load(), list(settings.scenarios)))


class LoadTests(pulumi.ComponentResource):
    """``somaagenthub:ops:LoadTests``: the operator, the scripts, the TestRuns and their flows in ``namespace``."""

    def __init__(self, settings: LoadTestSettings, namespace: str, gateway_url: str, gateway: Peer, gateway_port: int,
                 api_server_cidr: str, token: SecretRef | None, ctx: KitContext, after: list[pulumi.Resource],
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("somaagenthub:ops:LoadTests", "load-tests", None, opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=after)
        self.scenarios = scenarios_for(settings)
        self.operator = helm_chart(RELEASE, CHART_KEY, namespace, chart_values(settings, ctx), ctx, ctx.keep(child))
        self.service_account = k8s.core.v1.ServiceAccount(
            f"{namespace}-{SERVICE_ACCOUNT}", metadata={"name": SERVICE_ACCOUNT, "namespace": namespace,
                                                        "labels": recommended(SERVICE_ACCOUNT, "load-test")},
            automount_service_account_token=False, opts=child)
        self.scripts = k8s.core.v1.ConfigMap(
            f"{namespace}-{SCRIPTS}", metadata={"name": SCRIPTS, "namespace": namespace, "labels": recommended(SCRIPTS, "load-test")},
            data={k6.script_file(s): k6.script(s) for s in self.scenarios}, opts=child)
        runner_image, starter_image = ctx.catalog.image("k6").reference, ctx.catalog.image("k6-operator-starter").reference
        labels = {"runner": RUNNER_LABELS, "initializer": INITIALIZER_LABELS, "starter": STARTER_LABELS}
        wait = pulumi.ResourceOptions(parent=self, depends_on=[*after, self.operator, self.service_account, self.scripts])
        self.testruns = [
            custom_resource("k6.io/v1alpha1", "TestRun", scenario.name, namespace,
                            k6.testrun_spec(scenario, config_map=SCRIPTS, base_url=gateway_url, runner_image=runner_image,
                                            starter_image=starter_image, token_secret=(token.name, TOKEN_KEY) if token else None,
                                            labels=labels, service_account=SERVICE_ACCOUNT,
                                            runner_resources=resource_requirements(settings.runner)),
                            wait, labels=recommended(scenario.name, "load-test"), ctx=ctx)
            for scenario in self.scenarios
        ]
        self.flows = flows(namespace, gateway, gateway_port, api_server_cidr, ctx, child)
        self.register_outputs({"scenarios": [s.name for s in self.scenarios], "testruns": [s.name for s in self.scenarios]})


def flows(namespace: str, gateway: Peer, gateway_port: int, api_server_cidr: str, ctx: KitContext,
          opts: pulumi.ResourceOptions) -> list[pulumi.Resource]:
    """Who talks to whom during a load test, declared once (NetworkPolicies here; the mesh's AuthorizationPolicies
    from the same ledger): the controller to the API server and the runners, the starter to the runners, the
    runners to the gateway, and the gateway's side of that last flow in its own namespace."""
    controller = Peer(pods=dict(CONTROLLER_LABELS))
    starter = Peer(pods=dict(STARTER_LABELS))
    runners = Peer(pods=dict(RUNNER_LABELS))
    from_ops = Peer(namespace=namespace, pods=dict(RUNNER_LABELS))
    led = ctx.flows
    return [
        allow_egress("k6-operator-to-api-server", namespace, CONTROLLER_LABELS, [Peer(cidr=api_server_cidr)], API_SERVER_PORTS, opts, ledger=led),
        allow_egress("k6-operator-to-runners", namespace, CONTROLLER_LABELS, [runners], [K6_API_PORT], opts, ledger=led),
        allow_egress("k6-starter-to-runners", namespace, STARTER_LABELS, [runners], [K6_API_PORT], opts, ledger=led),
        allow_ingress("k6-runners-from-operator-and-starter", namespace, RUNNER_LABELS, [controller, starter], [K6_API_PORT], opts, ledger=led),
        allow_egress("k6-runners-to-gateway", namespace, RUNNER_LABELS, [gateway], [gateway_port], opts, ledger=led),
        allow_ingress("api-gateway-from-k6-runners", gateway.namespace, dict(gateway.pods), [from_ops], [gateway_port], opts, ledger=led),
    ]
