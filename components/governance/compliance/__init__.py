"""Compliance on the audit pipeline (issue 12 point 3; docs/architecture/compliance.md).

What this component deploys: the compliance dashboard and the compliance alert rules, as the labelled
ConfigMaps Core's Grafana loads (in Core's observability namespace, where Grafana's sidecars look). What it
relies on from Core: the ClickHouse data source (uid ``clickhouse``), the read-only ``grafana`` user and the
route of Grafana-managed alerts to the platform Alertmanager, which Core builds when the stack sets
``governance.compliance``.

What maps the decision points' records to audit events is the audit shipper's mapping (apps/audit-shipper,
``soma_audit_shipper.mapping``; ``events.py`` passes it the gate's rules), tested against the contract's SQL;
the shipper service runs it; the phase deploys it (``shipper.py``) when ``governance.compliance.shipper`` is on
(docs, "The shipper").
"""
from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.core.observability.provisioning import grafana_alerting_config_map, grafana_dashboard_config_map
from components.governance.compliance.grafana_files import load_alert_files, load_dashboards
from components.settings import ComplianceSettings
from policies.config import load_config_file, stack_config_path


@dataclass(frozen=True)
class ComplianceOutputs:
    dashboards: tuple[str, ...]
    alert_files: tuple[str, ...]


def alert_values(settings: ComplianceSettings) -> dict[str, int]:
    return {
        "denialSpike": settings.denial_spike,
        "spikeFactor": settings.spike_factor,
        "spikeWindowMinutes": settings.spike_window_minutes,
        "imageAttempts": settings.image_attempts,
    }


class Compliance(pulumi.ComponentResource):
    def __init__(self, settings: ComplianceSettings, stack: str, grafana_namespace: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__("somaagenthub:governance:Compliance", "compliance", None, opts)
        child = pulumi.ResourceOptions(parent=self)
        policy_config = load_config_file(stack_config_path(stack))
        self.dashboards = [
            grafana_dashboard_config_map(f"grafana-dashboard-{name}", grafana_namespace, dashboard, child)
            for name, dashboard in load_dashboards(policy_config).items()
        ]
        self.alert_rules = [
            grafana_alerting_config_map(f"grafana-alerts-{name}", grafana_namespace, document, child)
            for name, document in load_alert_files(alert_values(settings)).items()
        ]
        self.outputs = ComplianceOutputs(
            dashboards=tuple(sorted(load_dashboards(policy_config))),
            alert_files=tuple(sorted(load_alert_files(alert_values(settings)))),
        )
        self.register_outputs({"dashboards": list(self.outputs.dashboards), "alertFiles": list(self.outputs.alert_files)})
