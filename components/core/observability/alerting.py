"""Where Alertmanager sends alerts: receivers from the stack settings, routes by severity, inhibitions.

The configuration is Alertmanager's own file format (prometheus/alertmanager v0.34.0 config/ and
notify/*/config.go), handed to kube-prometheus-stack as ``alertmanager.config``; the chart renders it
into the Secret ``alertmanager-kps-alertmanager``, which the Prometheus operator reads as the
Alertmanager's configuration (the only form it accepts besides AlertmanagerConfig resources). That
Secret holds routing only: every credential is a file. An administrator writes the credentials to
Vault (``alertmanager.credentialsPath``, one key per receiver), External Secrets delivers them as the
Secret ``alertmanager-receivers-credentials`` (``Secrets.share``), and the Alertmanager resource mounts
it under ``/etc/alertmanager/secrets/<secret>/`` (``spec.secrets``; prometheus-operator v0.93.0
pkg/alertmanager/statefulset.go, ``secretsDir``), where ``url_file``, ``routing_key_file`` and
``auth_password_file`` read it at notification time.

Routing: the always-firing ``Watchdog`` (kube-prometheus-stack's general.rules, ``vector(1)``) goes to
the heartbeat receiver every few minutes and nowhere else; ``severity=critical`` to every receiver in
``critical``, ``severity=warning`` to those in ``warning``; everything else (``info``, the chart's
``none``) to the receiver ``null``, which notifies nobody. Inhibitions: a component that is down
silences the alerts that are only its symptoms, in the same namespace, and a critical alert silences
the warning and info of the same name.
"""
from __future__ import annotations

from typing import Any, Mapping

from components.settings import AlertmanagerSettings, ReceiverSettings

NULL = "null"
"""The receiver with no integration: Alertmanager keeps the alert visible and notifies nobody."""
CREDENTIALS_SERVICE = "alertmanager-receivers"
CREDENTIALS_SECRET = f"{CREDENTIALS_SERVICE}-credentials"
"""The ESO Secret ``Secrets.share(CREDENTIALS_SERVICE, ...)`` creates (``<service>-credentials``)."""
SECRETS_DIR = "/etc/alertmanager/secrets"
HEARTBEAT_ALERT = "Watchdog"
HEARTBEAT_REPEAT = "5m"
"""How often the heartbeat receiver is called while alerting works: a heartbeat service should raise
its own alarm after missing two or three calls."""
SEVERITIES = ("critical", "warning")
"""Severities that notify; ``info`` and anything else go to ``null``."""

INHIBITIONS: Mapping[str, tuple[str, ...]] = {
    "VaultDown": ("VaultPodUnreachable", "VaultSealed"),
    "PostgresInstanceDown": ("PostgresWALArchivingFailing", "PostgresWALArchiveBacklog"),
    "OtelCollectorDown": ("OtelCollectorRefusingData", "OtelCollectorDroppingData", "OtelCollectorExportFailing"),
}
"""A component's Down alert and the alerts of the same component that only repeat it (alerts/): while
Vault answers no scrape, its pods look unreachable and sealed; while PostgreSQL is down it archives no
WAL; while the collector is down its intake and exports fail. Matched in the same namespace."""

CONFIG_WAIVER = (
    "Alertmanager's routing configuration: kube-prometheus-stack renders alertmanager.config into this Secret, "
    "the only form the Prometheus operator reads besides AlertmanagerConfig resources. It holds receivers, routes "
    "and inhibitions and no credential: every credential is a *_file path into the ESO Secret "
    f"{CREDENTIALS_SECRET}, filled from Vault (components/core/observability/alerting.py; "
    "tests/core/test_observability_ha.py decodes the rendered Secret and checks it)."
)


def credential_file(receiver: str) -> str:
    return f"{SECRETS_DIR}/{CREDENTIALS_SECRET}/{receiver}"


def credential_keys(settings: AlertmanagerSettings) -> tuple[str, ...]:
    """The Vault keys (receiver names) an administrator writes under ``credentialsPath``."""
    return tuple(sorted(name for name, r in settings.receivers.items() if r.has_credential))


def delivers(settings: AlertmanagerSettings, vault_configured: bool) -> bool:
    """Receivers are wired only once Vault can deliver their credentials (``core.vault.configure``)."""
    return vault_configured and bool(settings.receivers)


def _integration(name: str, receiver: ReceiverSettings, heartbeat: bool) -> dict[str, Any]:
    if receiver.type == "webhook":
        return {"webhook_configs": [{"url_file": credential_file(name), "send_resolved": not heartbeat}]}
    if receiver.type == "pagerduty":
        return {"pagerduty_configs": [{"routing_key_file": credential_file(name), "send_resolved": True}]}
    email: dict[str, Any] = {"to": receiver.to, "from": receiver.from_address, "smarthost": receiver.smarthost,
                             "require_tls": True, "send_resolved": True}
    if receiver.auth_username:
        email |= {"auth_username": receiver.auth_username, "auth_password_file": credential_file(name)}
    return {"email_configs": [email]}


def _inhibit_rules() -> list[dict[str, Any]]:
    causes = [
        {"source_matchers": [f'alertname = "{cause}"'], "target_matchers": [f'alertname =~ "{"|".join(symptoms)}"'],
         "equal": ["namespace"]}
        for cause, symptoms in INHIBITIONS.items()
    ]
    return [*causes, {"source_matchers": ['severity = "critical"'], "target_matchers": ['severity =~ "warning|info"'],
                      "equal": ["namespace", "alertname"]}]


def config(settings: AlertmanagerSettings, vault_configured: bool) -> dict[str, Any]:
    """Alertmanager's configuration file as a mapping; every key kube-prometheus-stack's default sets is set."""
    wired = delivers(settings, vault_configured)
    receivers = [{"name": NULL}]
    routes: list[dict[str, Any]] = []
    heartbeat = settings.heartbeat if wired else None
    if wired:
        receivers += [{"name": name, **_integration(name, r, name == heartbeat)} for name, r in sorted(settings.receivers.items())]
    # the heartbeat first and alone: it must not page, and nothing else may swallow it
    routes.append({"receiver": heartbeat or NULL, "matchers": [f'alertname = "{HEARTBEAT_ALERT}"'],
                   **({"group_wait": "0s", "group_interval": "1m", "repeat_interval": HEARTBEAT_REPEAT} if heartbeat else {})})
    if wired:
        for severity in SEVERITIES:
            routes += [{"receiver": name, "matchers": [f'severity = "{severity}"'], "continue": True}
                       for name in getattr(settings, severity)]
    return {
        "global": {"resolve_timeout": "5m"},
        "route": {"receiver": NULL, "group_by": ["namespace", "alertname"], "group_wait": "30s", "group_interval": "5m",
                  "repeat_interval": "4h", "routes": routes},
        "receivers": receivers,
        "inhibit_rules": _inhibit_rules(),
        "templates": [],
    }
