"""Gatekeeper ExpansionTemplates: a workload is judged when it is applied, not when its pods appear.

Constraints match Pods. Without expansion, a Deployment whose pod template breaks a rule is accepted and
its ReplicaSet's pods are refused later, one by one, far from the ``pulumi up`` that caused it. With these
templates Gatekeeper expands each workload's pod template into the Pod it would create and judges that
(``source: Generated``; the constraints' ``match.source`` defaults to All), so the apply itself is refused
and the deployment stops there. Workloads and Jobs at ``spec.template`` as Gatekeeper's expansion docs
show them (website/docs/expansion.md at v3.23.0); CronJobs are ours, their pod template one level down at
``spec.jobTemplate.spec.template``. Expansion is on in the chart (``enableGeneratorResourceExpansion``).
"""
from __future__ import annotations

API = "expansion.gatekeeper.sh/v1beta1"
POD = {"group": "", "version": "v1", "kind": "Pod"}
EXPANSIONS = {
    # name: (applyTo, templateSource)
    "expand-workloads": ([{"groups": ["apps"], "versions": ["v1"], "kinds": ["DaemonSet", "Deployment", "ReplicaSet", "StatefulSet"]},
                          {"groups": ["batch"], "versions": ["v1"], "kinds": ["Job"]}], "spec.template"),
    "expand-cronjobs": ([{"groups": ["batch"], "versions": ["v1"], "kinds": ["CronJob"]}], "spec.jobTemplate.spec.template"),
}
"""Every kind pods are declared through (a bare ReplicaSet too, as the docs' example has it)."""


def specs() -> dict[str, dict]:
    """``spec`` of each ExpansionTemplate by name; an empty enforcementAction keeps each constraint's own."""
    return {name: {"applyTo": apply_to, "templateSource": source, "generatedGVK": dict(POD)}
            for name, (apply_to, source) in EXPANSIONS.items()}
