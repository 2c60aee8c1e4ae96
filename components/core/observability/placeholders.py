"""The names the alert and dashboard templates may use, and their values for one stack.

``alerts/*.yaml`` and ``dashboards/*.json`` write what depends on the stack as ``<<name>>``
(catalog.py fills them). The vocabulary is small and closed:

``ns.<purpose>``
    one Core namespace by purpose: ``ns.operators``, ``ns.secrets``, ``ns.data``, ``ns.observability``.
``namespaces.<phase>``
    every namespace of a phase (``core``, ``mesh``, ``governance``, ``agents``, ``ops``) or of the
    whole ``platform``, as a regular-expression alternation for ``namespace=~"..."``.
``job.<component>``
    the ``job`` label Prometheus gives the series of a Core component's monitor. The Prometheus
    operator names a PodMonitor's job ``<namespace>/<name>`` and a ServiceMonitor's after the
    Service (or the Service's ``jobLabel`` label); prometheus-operator v0.93.0
    ``pkg/prometheus/promcfg.go`` (``generatePodMonitorConfig``, ``generateServiceMonitorConfig``).
``audit.topic``, ``audit.group``
    the audit topic and the ClickHouse consumer group reading it (components/core/data/kafka.py).

Values come from the stack settings (namespace names) and from the modules that create each
monitor (monitor and Service names), so a renamed namespace or monitor changes the rules with it.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

from components.core import certificates
from components.core.data import clickhouse, kafka, minio, postgres, qdrant
from components.core.secrets import external_secrets, vault_server
from components.settings import CoreSettings

CORE_PURPOSES = ("operators", "secrets", "data", "observability")


def core_jobs(settings: CoreSettings) -> dict[str, str]:
    """``job`` of each Core component's monitor, by component."""
    data, secrets = settings.namespaces.data.name, settings.namespaces.secrets.name
    return {
        "vault": f"{secrets}/{vault_server.MONITOR}",
        "postgres": f"{data}/{postgres.CLUSTER}",
        "qdrant": f"{data}/{qdrant.NAME}",
        "kafka-brokers": f"{data}/{kafka.BROKER_MONITOR}",
        "kafka-exporter": f"{data}/{kafka.EXPORTER_MONITOR}",
        "clickhouse": f"{data}/{clickhouse.MONITOR}",
        # kit ServiceMonitor named after its Service, no jobLabel (components/kit/observability.py)
        "minio": minio.NAME,
        # chart ServiceMonitors without jobLabel: the Service's name
        "external-secrets": external_secrets.METRICS_SERVICE,
        # cert-manager's chart sets jobLabel app.kubernetes.io/name, which is cert-manager on the controller's Service
        "cert-manager": certificates.METRICS_SERVICE,
    }


def _alternation(names: Sequence[str]) -> str:
    return "|".join(sorted(names))


def values(settings: CoreSettings, phase_namespaces: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Every placeholder's value for this stack. ``phase_namespaces``: each phase's namespace names
    (``ClientNamespaces.by_phase``); Core's own come from ``settings``."""
    core = {purpose: getattr(settings.namespaces, purpose).name for purpose in CORE_PURPOSES}
    phases = {**{p: tuple(n) for p, n in phase_namespaces.items() if p != "core"}, "core": tuple(core.values())}
    out = {f"ns.{purpose}": name for purpose, name in core.items()}
    out |= {f"namespaces.{phase}": _alternation(names) for phase, names in phases.items() if names}
    out["namespaces.platform"] = _alternation({n for names in phases.values() for n in names})
    out |= {f"job.{component}": job for component, job in core_jobs(settings).items()}
    out |= {"audit.topic": kafka.AUDIT_TOPIC, "audit.group": kafka.CLICKHOUSE_GROUP}
    return out


__all__ = ["CORE_PURPOSES", "core_jobs", "values"]
