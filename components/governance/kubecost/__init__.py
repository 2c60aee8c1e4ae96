"""Cost: Kubecost (official chart, reading Core's Prometheus) in ``governance.cost``, its allocations
copied hourly into ClickHouse ``cost.allocations``, and the cost dashboard and anomaly alert in Grafana.

Kubecost itself is built only when ``governance.kubecost`` is set, which the settings refuse until the
catalog pins its images (docs/architecture/cost.md, "Blocked"). The dashboard and the alert read Core's
``cost.allocations`` and are built whenever the phase has its ``cost`` namespace.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import pulumi

from components.core import CoreOutputs
from components.core.data.clickhouse import CH_UID, CHI_LABELS, COST_INGEST_PASSWORD_KEY, COST_INGEST_USER, NAME as CLICKHOUSE_NAME, NATIVE_PORT
from components.core.observability.topology import KPS_FULLNAME, PROMETHEUS_WEB
from components.governance.kubecost import ingest
from components.governance.kubecost.reporting import reporting_config_maps
from components.governance.kubecost.values import API_PORT, CHART, FULLNAME, POD_LABELS, chart_values
from components.kit import CronJob, CronJobArgs, Egress, JobArgs, KitContext, Peer, ScriptFiles, SecretEnv, allow_egress, allow_ingress, helm_chart
from components.kit.network import PROMETHEUS_PODS
from components.kit.context import namespace_keys
from components.settings import KubecostSettings, PlatformSettings

MODEL_IMAGE, FRONTEND_IMAGE = "kubecost-cost-model", "kubecost-frontend"


@dataclass(frozen=True)
class CostOutputs:
    namespace: str
    kubecost_api: str | None
    """``http://<service>.<namespace>.svc:9003`` when Kubecost runs, else None."""


def prometheus_url(observability_ns: str) -> str:
    """Core's Prometheus (kube-prometheus-stack, fullnameOverride ``kps``): Service ``kps-prometheus``, port 9090."""
    return f"http://{KPS_FULLNAME}-prometheus.{observability_ns}.svc:{PROMETHEUS_WEB}"


def namespace_phases(platform: PlatformSettings) -> dict[str, str]:
    """Each platform namespace's phase (``soma-data`` -> ``core``): the phase of a workload without a phase label."""
    return {name: key.partition(".")[0] for key, name in namespace_keys(platform).items()}


class Cost(pulumi.ComponentResource):
    def __init__(self, namespace: str, settings: KubecostSettings | None, ctx: KitContext, core: CoreOutputs,
                 platform: PlatformSettings, opts: pulumi.ResourceOptions | None = None):
        super().__init__("somaagenthub:governance:Cost", "cost", None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.reporting = reporting_config_maps(core.observability_namespace, child)
        api = None
        if settings is not None:
            api = self._kubecost(namespace, settings, ctx, core, namespace_phases(platform), child)
        self.outputs = CostOutputs(namespace=namespace, kubecost_api=api)
        self.register_outputs({"namespace": namespace, "kubecostApi": api or ""})

    def _kubecost(self, ns: str, settings: KubecostSettings, ctx: KitContext, core: CoreOutputs,
                  phases: Mapping[str, str], opts: pulumi.ResourceOptions) -> str:
        obs, data = core.observability_namespace, core.data_namespace
        model, frontend = ctx.catalog.image(MODEL_IMAGE), ctx.catalog.image(FRONTEND_IMAGE)
        values = chart_values(settings, prometheus_url(obs), model.reference, frontend.reference)
        self.chart = helm_chart("kubecost", CHART, ns, values, ctx, opts)
        api = f"http://{FULLNAME}.{ns}.svc:{API_PORT}"
        prometheus = Peer(namespace=obs, pods=PROMETHEUS_PODS)
        ingest_pods = {"app.kubernetes.io/name": ingest.NAME}
        flows = ctx.flows
        self.network = [
            allow_egress("kubecost-to-prometheus", ns, POD_LABELS, [prometheus], [PROMETHEUS_WEB], opts, ledger=flows),
            allow_ingress("prometheus-from-kubecost", obs, PROMETHEUS_PODS, [Peer(namespace=ns, pods=POD_LABELS)], [PROMETHEUS_WEB], opts, ledger=flows),
            allow_ingress("kubecost-metrics-scrape", ns, POD_LABELS, [prometheus], [API_PORT], opts, ledger=flows),
            allow_ingress("kubecost-from-cost-ingest", ns, POD_LABELS, [Peer(namespace=ns, pods=ingest_pods)], [API_PORT], opts, ledger=flows),
            allow_ingress("clickhouse-from-cost-ingest", data, CHI_LABELS, [Peer(namespace=ns, pods=ingest_pods)], [NATIVE_PORT], opts, ledger=flows),
        ]
        secrets = core.secrets
        if secrets is None:
            return api
        password = secrets.grant(ingest.NAME, ns, f"{ingest.NAME}-vault", "clickhouse",
                                 {COST_INGEST_PASSWORD_KEY: secrets.password("clickhouse-cost-ingest")}, create_service_account=True)
        self.ingest = CronJob(
            CronJobArgs(
                job=JobArgs(
                    name=ingest.NAME, namespace=ns, component="cost-ingest", image="clickhouse-server",
                    command=("/bin/sh", "/ingest/ingest.sh"), resources=ingest.RESOURCES,
                    env={"CLICKHOUSE_HOST": f"clickhouse-{CLICKHOUSE_NAME}.{data}.svc.cluster.local", "KUBECOST_API": api, "HOME": "/tmp",
                         "CLICKHOUSE_USER": COST_INGEST_USER},
                    secret_env=(SecretEnv("CLICKHOUSE_PASSWORD", password.name, COST_INGEST_PASSWORD_KEY),),
                    files=ScriptFiles("/ingest", ingest.script(phases)),
                    egress=(Egress(to=Peer(namespace=ns, pods=POD_LABELS), ports=(API_PORT,)),
                            Egress(to=Peer(namespace=data, pods=CHI_LABELS), ports=(NATIVE_PORT,))),
                    run_as_user=CH_UID, backoff_limit=2,
                ),
                schedule=settings.ingest_schedule,
            ),
            ctx, opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[self.chart])),
        )
        return api
