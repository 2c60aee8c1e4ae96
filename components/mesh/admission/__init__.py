"""Admission (issue 11, point 4, Gatekeeper half): Gatekeeper and the constraints that mirror the gate.

Order on a real cluster: the chart's CRDs (``crds/``, installed by the program first), the chart, then the
ConstraintTemplates (they wait for the chart: Pulumi waits for its Deployments to be ready, so the
controller that turns a template into its constraint CRD is running), then each constraint, which waits
for its template. Gatekeeper creates a constraint's CRD (``constraints.gatekeeper.sh/<Kind>``) only once it
has compiled the template; until then the API server answers "no matches for kind", which the provider
reports as a failed create. Whether the provider retries that on its own was not verified here (no
cluster), so a first ``pulumi up`` on a cluster that is slow to compile can stop on that error: the
runbook (docs/runbooks/admission.md) says to run ``pulumi up`` again; no constraint is ever applied
before its template.
"""
from __future__ import annotations

import pulumi

from components.kit import KitContext, custom_resource, helm_chart, pod_monitor
from components.mesh.admission import expansion, gatekeeper
from components.mesh.admission.alerts import alert_rules
from components.mesh.admission.policies import TEMPLATES_API, constraints, templates
from components.settings import AdmissionSettings

MONITOR = "gatekeeper"


class Admission(pulumi.ComponentResource):
    """Gatekeeper in ``namespace``, the platform's ConstraintTemplates and this stack's constraints."""

    def __init__(self, settings: AdmissionSettings, namespace: str, observability_namespace: str, api_server_cidr: str,
                 ctx: KitContext, opts: pulumi.ResourceOptions | None = None):
        super().__init__("somaagenthub:mesh:Admission", "admission", None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.chart = helm_chart(gatekeeper.RELEASE, "gatekeeper", namespace,
                                gatekeeper.chart_values(settings, namespace, ctx), ctx, ctx.keep(child))
        after_chart = pulumi.ResourceOptions(parent=self, depends_on=[self.chart])
        self.templates = {
            t.kind: custom_resource(TEMPLATES_API, "ConstraintTemplate", t.name, None, t.document["spec"], after_chart,
                                    annotations=dict(t.document["metadata"].get("annotations") or {}))
            for t in templates()
        }
        self.constraints = []
        for c in constraints(ctx.stack, settings.enforcement_action):
            doc = c.document()
            self.constraints.append(custom_resource(
                doc["apiVersion"], doc["kind"], doc["metadata"]["name"], None, doc["spec"],
                pulumi.ResourceOptions(parent=self, depends_on=[self.templates[c.template.kind]]),
                annotations=doc["metadata"]["annotations"],
            ))
        # workloads judged when applied: their pod templates expanded into the Pods they would create
        self.expansions = [custom_resource(expansion.API, "ExpansionTemplate", name, None, spec, after_chart)
                           for name, spec in expansion.specs().items()]
        self.network_policies = gatekeeper.network(namespace, observability_namespace, api_server_cidr, ctx, child)
        self.monitor = pod_monitor(MONITOR, namespace, gatekeeper.SYSTEM_LABELS,
                                   [{"port": "metrics", "path": "/metrics", "interval": "30s"}], ctx, child)
        self.alerts = alert_rules(namespace, ctx, child)
        self.register_outputs({"constraints": [c.name for c in constraints(ctx.stack, settings.enforcement_action)]})
