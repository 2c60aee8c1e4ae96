"""The alert rules as deployed, unit-tested with Prometheus' own rule tests (``promtool test rules``).

The rule files are the PrometheusRules of the rendered prod plan (the templates filled for prod,
and the generated backup-age rule), written as Prometheus rule files. The input series carry the
labels Prometheus would give them in that plan: ``job`` and ``namespace`` of the target the
producing monitor scrapes (tests/scrapes.py), object names (CronJobs, pods) from the plan. So a rule
whose matchers miss what the plan scrapes does not fire here either.

Annotations are left out of the unit-test copies: promtool compares them verbatim, and they do not
decide whether or with which labels an alert fires; ``promtool check rules`` parses them (templates
included) in every rendered rule file of both stacks.

promtool comes from Debian's ``prometheus`` package (``make promtool`` puts it in build/bin; CI runs
that first). Debian 12 ships 2.42 while the platform runs Prometheus 3.15: the series below stay
clear of what changed between them (range selectors became left-open in 3.0), so the outcome is
the same on both.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from components import settings as platform_settings
from components.core import backup_watch
from components.core.data import clickhouse, postgres, qdrant
from components.core.observability import producers
from components.core.secrets import raft_snapshots
from tests.core.test_alerts_can_fire import our_rules
from tests.helpers import objects
from tests.scrapes import all_targets
from tools.render import stack_config

REPO = Path(__file__).resolve().parents[2]
STACKS = ("dev", "prod")


def _promtool() -> str | None:
    for candidate in (os.environ.get("PROMTOOL"), shutil.which("promtool"), str(REPO / "build" / "bin" / "promtool")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


PROMTOOL = _promtool()
pytestmark = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not found (PROMTOOL, PATH, build/bin): `make promtool` takes it from Debian's prometheus package")


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def rule_file(rule_object: dict, annotations: bool = True) -> dict:
    groups = yaml.safe_load(yaml.safe_dump(rule_object["spec"]["groups"]))
    if not annotations:
        for group in groups:
            for rule in group["rules"]:
                rule.pop("annotations", None)
    return {"groups": groups}


# --- promtool check rules: every rendered rule file ------------------------------------------------

@pytest.mark.parametrize("stack", STACKS)
def test_promtool_accepts_every_rendered_rule_file(plans, stack, tmp_path):
    """Ours and the ones kube-prometheus-stack renders: PromQL, durations, label names, annotation templates."""
    files = []
    for rule_object in objects(plans[stack], "PrometheusRule"):
        path = tmp_path / f"{rule_object['metadata']['name']}.yaml"
        path.write_text(yaml.safe_dump(rule_file(rule_object)))
        files.append(path.name)
    assert len(files) > 20
    result = run("check", "rules", *files, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_refuses_a_broken_rule(tmp_path):
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [
        {"alert": "A", "expr": "sum(up", "labels": {"severity": "info"}},
        {"alert": "B", "expr": "up", "annotations": {"summary": "{{ $labels.x "}}]}]}))
    result = run("check", "rules", "bad.yaml", cwd=tmp_path)
    assert result.returncode != 0 and "bad.yaml" in result.stdout + result.stderr


# --- promtool test rules: the important alerts, on series labelled as the plan scrapes them ---------

class Scraped:
    """Labels of the prod plan's targets and objects, to write input series with."""

    def __init__(self, plan: dict):
        self.plan = plan
        self.core = platform_settings.parse(stack_config("prod"), "prod").core
        self.targets = all_targets(plan)

    def target(self, monitor: producers.Monitor) -> dict[str, str]:
        key = (monitor.kind, getattr(self.core.namespaces, monitor.namespace).name, monitor.name)
        (job, namespace), *_ = sorted({(t.job, t.namespace) for t in self.targets[key]})
        return {"job": job, "namespace": namespace}

    def ns(self, purpose: str) -> str:
        return getattr(self.core.namespaces, purpose).name

    def cronjobs(self) -> dict[str, str]:
        return {c["metadata"]["name"]: c["metadata"]["namespace"] for c in objects(self.plan, "CronJob")}


def series(name: str, labels: dict[str, str], values: str) -> dict:
    body = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return {"series": f"{name}{{{body}}}", "values": values}


def alert(alertname: str, severity: str, /, **labels: str) -> dict:
    """An expected alert: promtool adds ``alertname`` itself; ``labels`` are those the expression keeps."""
    return {"exp_labels": {"severity": severity, **labels}}


def case(name: str, input_series: list[dict], checks: list[tuple[str, str, list[dict]]], interval: str = "1m") -> dict:
    return {"name": name, "interval": interval, "input_series": input_series,
            "alert_rule_test": [{"eval_time": at, "alertname": alertname, "exp_alerts": expected} for at, alertname, expected in checks]}


def vault_cases(s: Scraped) -> list[dict]:
    vault = s.target(producers.VAULT)
    pods = [f"vault-{n}" for n in range(3)]
    up = lambda pod, values: series("up", {**vault, "pod": pod, "instance": f"{pod}:8200"}, values)
    return [
        case("one sealed Vault pod: VaultSealed for it alone",
             [series("vault_core_unsealed", {**vault, "pod": "vault-0"}, "1x20"),
              series("vault_core_unsealed", {**vault, "pod": "vault-1"}, "1 1 0x20")],
             [("10m", "VaultSealed", [alert("VaultSealed", "critical", namespace=vault["namespace"], pod="vault-1")])]),
        case("one Vault pod unreachable: VaultPodUnreachable for it, no VaultDown",
             [up("vault-0", "1x20"), up("vault-1", "1x20"), up("vault-2", "1 0x20")],
             [("10m", "VaultPodUnreachable", [alert("VaultPodUnreachable", "warning", **vault, pod="vault-2", instance="vault-2:8200")]),
              ("10m", "VaultDown", [])]),
        case("every Vault pod down: VaultDown",
             [up(pod, "0x20") for pod in pods],
             [("10m", "VaultDown", [alert("VaultDown", "critical", namespace=vault["namespace"])])]),
        case("no Vault target at all: VaultDown through absent()",
             [series("up", {"job": "something-else", "namespace": vault["namespace"]}, "1x20")],
             [("10m", "VaultDown", [alert("VaultDown", "critical", **vault)])]),
    ]


def postgres_cases(s: Scraped) -> list[dict]:
    target = s.target(producers.POSTGRES)
    # CloudNativePG names instance pods <cluster>-<serial> (cloudnative-pg v1.30.0 pkg/specs/pods.go)
    pod = {**target, "pod": f"{postgres.CLUSTER}-1"}
    return [
        case("the instance exporter cannot reach PostgreSQL: PostgresInstanceDown",
             [series("cnpg_collector_up", {**pod, "cluster": postgres.CLUSTER}, "1 0x20"), series("up", pod, "1x20")],
             [("10m", "PostgresInstanceDown", [alert("PostgresInstanceDown", "critical", **pod, cluster=postgres.CLUSTER)])]),
        case("no instance answers the PodMonitor: PostgresInstanceDown",
             [series("up", pod, "0x20"), series("cnpg_collector_up", {**pod, "cluster": postgres.CLUSTER}, "1x20")],
             [("10m", "PostgresInstanceDown", [alert("PostgresInstanceDown", "critical")])]),
        case("a healthy instance: no PostgresInstanceDown",
             [series("up", pod, "1x20"), series("cnpg_collector_up", {**pod, "cluster": postgres.CLUSTER}, "1x20")],
             [("10m", "PostgresInstanceDown", [])]),
    ]


STREAM_OF_CRONJOB = {clickhouse.BACKUP: "clickhouse", qdrant.BACKUP: "qdrant", raft_snapshots.NAME: "vault-raft"}


def backup_cases(s: Scraped) -> list[dict]:
    """Every backup writer fresh but one: that one's stream alerts, and only it."""
    hours = s.core.backups.max_age_hours
    step = 300  # seconds between samples (interval 5m); "0+300xN" is a timestamp that keeps up with time()
    samples = hours * 12 + 24
    fresh, stale = f"0+{step}x{samples}", f"0x{samples}"
    ksm = s.target(producers.KUBE_STATE_METRICS)["job"]
    barman = {**s.target(producers.POSTGRES), "pod": f"{postgres.CLUSTER}-1"}
    writers = {cronjob: ns for cronjob, ns in s.cronjobs().items() if cronjob in STREAM_OF_CRONJOB}
    too_old, never = f"{hours * 60 + 30}m", f"{hours * 60 + 60}m"

    def inputs(stale_one: str | None = None, missing: str | None = None) -> list[dict]:
        found = [series("kube_cronjob_status_last_successful_time", {"job": ksm, "namespace": ns, "cronjob": cronjob},
                        stale if cronjob == stale_one else fresh)
                 for cronjob, ns in writers.items() if cronjob != missing]
        if missing != "postgres":
            found.append(series("barman_cloud_cloudnative_pg_io_last_available_backup_timestamp", barman,
                                stale if stale_one == "postgres" else fresh))
        return found

    cases = [case("every backup is fresh: nothing fires", inputs(),
                  [(too_old, "BackupTooOld", []), (never, "BackupNeverSucceeded", [])], interval="5m"),
             case("the PostgreSQL plugin reports no backup since the start: BackupTooOld postgres", inputs(stale_one="postgres"),
                  [(too_old, "BackupTooOld", [alert("BackupTooOld", "critical", stream="postgres")])], interval="5m"),
             case("PostgreSQL's backup metric is gone: BackupNeverSucceeded postgres", inputs(missing="postgres"),
                  [(never, "BackupNeverSucceeded", [alert("BackupNeverSucceeded", "critical", stream="postgres")])], interval="5m")]
    for cronjob in writers:
        stream = STREAM_OF_CRONJOB[cronjob]
        cases.append(case(f"CronJob {cronjob} last succeeded too long ago: BackupTooOld {stream}", inputs(stale_one=cronjob),
                          [(too_old, "BackupTooOld", [alert("BackupTooOld", "critical", stream=stream)])], interval="5m"))
        cases.append(case(f"CronJob {cronjob} never succeeded: BackupNeverSucceeded {stream}", inputs(missing=cronjob),
                          [(never, "BackupNeverSucceeded", [alert("BackupNeverSucceeded", "critical", stream=stream)])], interval="5m"))
    return cases


def certificate_cases(s: Scraped) -> list[dict]:
    target = s.target(producers.CERT_MANAGER)
    # cert-manager's own namespace label (the Certificate's) is kept by the ServiceMonitor's honorLabels
    cert = {"job": target["job"], "namespace": s.ns("secrets"), "name": "vault-tls", "issuer_name": "somaagenthub-ca",
            "issuer_kind": "ClusterIssuer", "issuer_group": "cert-manager.io"}
    day = 24 * 3600
    return [
        case("ten days left: CertificateExpiringSoon, not yet imminent",
             [series("certmanager_certificate_expiration_timestamp_seconds", cert, f"{10 * day}x200")],
             [("2h", "CertificateExpiringSoon", [alert("CertificateExpiringSoon", "warning", **cert)]),
              ("2h", "CertificateExpiryImminent", [])]),
        case("two days left: CertificateExpiryImminent, and no longer 'soon'",
             [series("certmanager_certificate_expiration_timestamp_seconds", cert, f"{2 * day}x200")],
             [("2h", "CertificateExpiryImminent", [alert("CertificateExpiryImminent", "critical", **cert)]),
              ("2h", "CertificateExpiringSoon", [])]),
        case("sixty days left: quiet",
             [series("certmanager_certificate_expiration_timestamp_seconds", cert, f"{60 * day}x200")],
             [("2h", "CertificateExpiringSoon", []), ("2h", "CertificateExpiryImminent", [])]),
    ]


def audit_cases(s: Scraped) -> list[dict]:
    from components.core.data import kafka

    exporter = s.target(producers.KAFKA_EXPORTER)
    group = {**exporter, "consumergroup": kafka.CLICKHOUSE_GROUP, "topic": kafka.AUDIT_TOPIC}
    return [
        case("12000 unread audit events over two partitions: AuditConsumerLagHigh",
             [series("kafka_consumergroup_lag", {**group, "partition": "0"}, "6000x30"),
              series("kafka_consumergroup_lag", {**group, "partition": "1"}, "6000x30")],
             [("15m", "AuditConsumerLagHigh", [alert("AuditConsumerLagHigh", "warning", consumergroup=kafka.CLICKHOUSE_GROUP,
                                                     topic=kafka.AUDIT_TOPIC)])]),
        case("another consumer group's lag does not page for the audit consumer",
             [series("kafka_consumergroup_lag", {**group, "consumergroup": "someone-else", "partition": "0"}, "50000x30")],
             [("15m", "AuditConsumerLagHigh", [])]),
        case("lag above 1000 and growing for an hour: AuditConsumerLagGrowing",
             [series("kafka_consumergroup_lag_sum", group, "2000+50x90")],
             [("80m", "AuditConsumerLagGrowing", [alert("AuditConsumerLagGrowing", "critical", consumergroup=kafka.CLICKHOUSE_GROUP,
                                                        topic=kafka.AUDIT_TOPIC)])]),
        case("lag above 1000 but shrinking: no AuditConsumerLagGrowing",
             [series("kafka_consumergroup_lag_sum", group, "9000-50x90")],
             [("80m", "AuditConsumerLagGrowing", [])]),
        case("the audit consumer group has no members: AuditConsumerGroupEmpty",
             [series("kafka_consumergroup_members", {**exporter, "consumergroup": kafka.CLICKHOUSE_GROUP}, "1 0x30")],
             [("20m", "AuditConsumerGroupEmpty", [alert("AuditConsumerGroupEmpty", "critical", consumergroup=kafka.CLICKHOUSE_GROUP)])]),
        case("the exporter does not know the group: AuditConsumerGroupEmpty through absent()",
             [series("kafka_consumergroup_members", {**exporter, "consumergroup": "someone-else"}, "1x30")],
             [("20m", "AuditConsumerGroupEmpty", [alert("AuditConsumerGroupEmpty", "critical", consumergroup=kafka.CLICKHOUSE_GROUP)])]),
    ]


def workload_cases(s: Scraped) -> list[dict]:
    ksm = s.target(producers.KUBE_STATE_METRICS)["job"]
    crashing = {"job": ksm, "namespace": s.ns("data"), "pod": "qdrant-0", "container": "qdrant", "reason": "CrashLoopBackOff"}
    outside = {**crashing, "namespace": "kube-system", "pod": "coredns-0", "container": "coredns"}
    return [
        case("a platform container in CrashLoopBackOff for 20 minutes: PodCrashLooping",
             [series("kube_pod_container_status_waiting_reason", crashing, "1x30"),
              series("kube_pod_container_status_waiting_reason", outside, "1x30")],
             [("20m", "PodCrashLooping", [alert("PodCrashLooping", "warning", namespace=s.ns("data"), pod="qdrant-0", container="qdrant")])]),
        case("crash looping for 10 minutes only: not yet",
             [series("kube_pod_container_status_waiting_reason", crashing, "0x10 1x30")],
             [("20m", "PodCrashLooping", [])]),
    ]


CASES = (vault_cases, postgres_cases, certificate_cases, audit_cases, workload_cases)
IMPORTANT = {"VaultSealed", "VaultDown", "VaultPodUnreachable", "PostgresInstanceDown", "BackupTooOld", "BackupNeverSucceeded",
             "CertificateExpiringSoon", "CertificateExpiryImminent", "AuditConsumerLagHigh", "AuditConsumerLagGrowing",
             "AuditConsumerGroupEmpty", "PodCrashLooping"}


@pytest.fixture(scope="module")
def rule_tests(plans, tmp_path_factory) -> tuple[Path, dict[str, dict]]:
    """The prod plan's rules as files, and promtool test files over them: the backup-age rule on its own
    at a 5-minute evaluation interval (its cases span more than a day), everything else at one minute."""
    folder = tmp_path_factory.mktemp("promtool")
    names = []
    for rule_object in our_rules(plans["prod"]):
        name = f"{rule_object['metadata']['name']}.yaml"
        (folder / name).write_text(yaml.safe_dump(rule_file(rule_object, annotations=False)))
        names.append(name)
    scraped = Scraped(plans["prod"])
    backups = f"{backup_watch.RULE_NAME}.yaml"
    files = {
        "tests.yaml": {"rule_files": sorted(n for n in names if n != backups), "evaluation_interval": "1m",
                       "tests": [c for make in CASES for c in make(scraped)]},
        "tests-backups.yaml": {"rule_files": [backups], "evaluation_interval": "5m", "tests": backup_cases(scraped)},
    }
    for name, content in files.items():
        (folder / name).write_text(yaml.safe_dump(content, sort_keys=False))
    return folder, files


def test_the_important_alerts_fire_as_deployed(rule_tests):
    folder, files = rule_tests
    tested = {check["alertname"] for f in files.values() for t in f["tests"] for check in t["alert_rule_test"] if check["exp_alerts"]}
    assert IMPORTANT <= tested, IMPORTANT - tested
    result = run("test", "rules", *files, cwd=folder)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_fails_a_rule_test_whose_alert_does_not_fire(rule_tests, tmp_path):
    """The runner is not a rubber stamp: a rule that no longer matches the scraped job fails its test."""
    folder, tests = rule_tests
    for path in folder.glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    rules = tmp_path / "soma-core-components.yaml"
    rules.write_text(rules.read_text().replace('/vault"', '/vault-old"'))
    result = run("test", "rules", "tests.yaml", cwd=tmp_path)
    assert result.returncode != 0
    assert "VaultPodUnreachable" in result.stdout + result.stderr
