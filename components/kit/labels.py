"""Recommended Kubernetes labels, written the same way for everything the platform creates."""
from __future__ import annotations

PART_OF = "somaagenthub"
MANAGED_BY = "pulumi"
WAIVER_PREFIX = "waivers.somaagenthub.io/"
REASON_PREFIX = "somaagenthub.io/"


def recommended(name: str, component: str, version: str | None = None) -> dict[str, str]:
    """The ``app.kubernetes.io/*`` set: dashboards, cost reports and policies group by these."""
    labels = {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }
    if version:
        labels["app.kubernetes.io/version"] = version[:63]
    return labels


def selector(name: str) -> dict[str, str]:
    """The stable subset used in selectors (selectors are immutable, so no version in them)."""
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": PART_OF}


def client_label(store: str) -> dict[str, str]:
    """The label a pod wears to be let into ``store`` from another namespace (``somaagenthub.io/<store>-client``)."""
    return {f"somaagenthub.io/{store}-client": "true"}


def waiver_annotations(opt_out: dict[str, str]) -> dict[str, str]:
    """Turn ``{"rule-name": "reason"}`` into the annotations the policy pack reads as waivers.

    An opt-out without a reason is refused here, long before review: the reason is what a
    security reviewer reads on the live object.
    """
    for rule, reason in opt_out.items():
        if not reason or not reason.strip():
            raise ValueError(f"opting out of '{rule}' needs a reason")
    return {f"{WAIVER_PREFIX}{rule}": reason for rule, reason in sorted(opt_out.items())}


TENANT_LABEL = "somaagenthub.io/tenant"
"""The tenant a workload serves (agents, workflows started for one tenant); cost reports and dashboards group by it."""
PHASE_LABEL = "somaagenthub.io/phase"
"""The roadmap phase a workload belongs to (core, mesh, governance, agents, ops), where the namespace alone does not say."""


def prometheus_label(label: str) -> str:
    """``label`` as Prometheus (and so Kubecost) spells it: every character outside ``[a-zA-Z0-9_]`` becomes ``_``."""
    return "".join(c if c.isalnum() or c == "_" else "_" for c in label)
