"""Stack settings: both stack files load; every kind of bad input is reported with its key, all at once."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from components import settings
from components.config_schema import SettingsError
from tests.helpers import config_with
from tools.render import ROOT, stack_config


def parse(config: dict[str, str], stack: str = "dev") -> settings.PlatformSettings:
    return settings.parse(config, stack)


def problems_of(config: dict[str, str], stack: str = "dev") -> list[str]:
    with pytest.raises(SettingsError) as caught:
        parse(config, stack)
    return caught.value.problems


def core_with(stack: str, edit) -> dict[str, str]:
    core = json.loads(stack_config(stack)["somaagenthub:core"])
    edit(core)
    return config_with(stack, core=core)


def test_dev_is_small_and_prod_is_highly_available():
    dev, prod = parse(stack_config("dev"), "dev"), parse(stack_config("prod"), "prod")
    assert not dev.high_availability and prod.high_availability
    assert dev.core.vault.replicas == 1 and dev.core.postgres.instances == 1 and dev.core.kafka.brokers == 1
    assert prod.core.vault.replicas >= 3 and prod.core.postgres.instances >= 3
    assert prod.core.kafka.controllers >= 3 and prod.core.kafka.brokers >= 3
    assert dev.registry == "upstream" and prod.registry != "upstream"
    assert (dev.policy_enforcement, prod.policy_enforcement) == ("advisory", "mandatory")


def test_settings_are_frozen():
    s = parse(stack_config("dev"))
    with pytest.raises(AttributeError):
        s.domain = "evil.example"  # type: ignore[misc]


def test_unknown_key_is_named_with_the_known_ones():
    found = problems_of(core_with("dev", lambda c: c["vault"].update(replica=2)))
    assert any(p.startswith("somaagenthub:core.vault.replica: unknown key") and "replicas" in p for p in found)


def test_unknown_top_level_key():
    config = stack_config("dev") | {"somaagenthub:domian": "x.example"}
    assert any(p.startswith("somaagenthub:domian: unknown key") for p in problems_of(config))


def test_wrong_type():
    found = problems_of(core_with("dev", lambda c: c["qdrant"].update(replicas="three")))
    assert "somaagenthub:core.qdrant.replicas: expected a whole number, got 'three'" in found


def test_out_of_range_number():
    found = problems_of(core_with("dev", lambda c: c["kafka"].update(auditPartitions=0)))
    assert any(p.startswith("somaagenthub:core.kafka.auditPartitions: must be at least 1") for p in found)


def test_malformed_quantity():
    found = problems_of(core_with("dev", lambda c: c["postgres"].update(storage="20GB")))
    assert any(p.startswith("somaagenthub:core.postgres.storage: must be a byte quantity") for p in found)


def test_missing_required_value():
    found = problems_of(core_with("dev", lambda c: c["minio"].pop("volumeSize")))
    assert "somaagenthub:core.minio.volumeSize: required value is missing" in found


def test_missing_top_level_value():
    config = stack_config("dev")
    del config["somaagenthub:domain"]
    assert "somaagenthub:domain: required value is missing" in problems_of(config)


def test_phase_needing_a_disabled_phase():
    config = config_with("dev", phases={"core": True, "mesh": False, "governance": True, "agents": False, "ops": True})
    found = problems_of(config)
    assert "somaagenthub:phases.governance: needs phase 'mesh', which is disabled" in found


def test_every_problem_is_reported_at_once():
    def break_three(c):
        c["vault"]["replicas"] = "x"
        c["qdrant"]["bogus"] = True
        c["observability"]["loki"]["mode"] = "monolith"

    config = core_with("dev", break_three) | {"somaagenthub:registry": "http://registry"}
    found = problems_of(config)
    assert len(found) == 4, found
    assert any("somaagenthub:core.observability.loki.mode: must be one of" in p for p in found)
    assert any(p.startswith("somaagenthub:registry:") for p in found)


def test_secret_in_a_stack_file_is_refused():
    config = stack_config("dev") | {"somaagenthub:adminPassword": json.dumps({"secure": "v1:abc"})}
    assert any("stack files hold no secrets" in p for p in problems_of(config))
    with pytest.raises(SettingsError) as caught:
        settings.parse(stack_config("dev") | {"somaagenthub:token": "x"}, "dev", frozenset({"somaagenthub:token"}))
    assert any("stack files hold no secrets" in p for p in caught.value.problems)


def test_high_availability_refuses_single_replicas():
    found = problems_of(core_with("prod", lambda c: c["vault"].update(replicas=1)), "prod")
    assert any(p.startswith("somaagenthub:core.vault.replicas: highAvailability is on") for p in found)


def test_namespace_declared_twice():
    found = problems_of(core_with("dev", lambda c: c["namespaces"]["data"].update(name="soma-secrets")))
    assert "somaagenthub: namespace 'soma-secrets' is declared 2 times" in found


def test_bad_stack_file_registers_nothing_and_names_the_key(tmp_path):
    document = (ROOT / "Pulumi.dev.yaml").read_text().replace("kubernetesVersion: '1.33'", "kubernetesVersion: '1.20'")
    bad = tmp_path / "Pulumi.dev.yaml"
    bad.write_text(document)
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "tools.render", "--stack", "dev", "--stack-file", str(bad), "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert result.returncode == 1
    assert "somaagenthub:kubernetesVersion: must be one of" in result.stderr
    assert not out.exists(), "a refused stack must not leave a plan behind"


def test_phase_problem_is_reported_beside_other_problems():
    config = core_with("dev", lambda c: c["vault"].update(replicas="x")) | {
        "somaagenthub:phases": json.dumps({"core": True, "mesh": False, "governance": False, "agents": True, "ops": True})
    }
    found = problems_of(config)
    assert "somaagenthub:core.vault.replicas: expected a whole number, got 'x'" in found
    assert "somaagenthub:phases.agents: needs phase 'mesh', which is disabled" in found


@pytest.mark.parametrize(
    "cidr, expected",
    [
        ("0.0.0.0/0", "/0 is too broad"),
        ("16.0.0.0/4", "/4 is too broad"),
        ("999.1.1.0/24", "must be a CIDR"),
        ("10.0.0.1/24", "must be a CIDR"),
        ("10.0.0.0/33", "must be a CIDR"),
    ],
)
def test_host_network_cidrs_must_be_real_and_narrow(cidr, expected):
    found = problems_of(core_with("prod", lambda c: c.update(apiServerCidr=cidr)), "prod")
    assert any(p.startswith("somaagenthub:core.apiServerCidr:") and expected in p for p in found), found


def test_a_namespace_core_needs_by_purpose_must_be_declared():
    agents = json.loads(stack_config("dev")["somaagenthub:agents"])
    agents["namespaces"] = {"workers": agents["namespaces"]["agents"]}
    found = problems_of(config_with("dev", agents=agents))
    assert "somaagenthub:agents.namespaces.agents: required value is missing (Core's stores admit clients from it)" in found


def test_the_node_log_agent_and_its_namespace_come_together():
    no_namespace = problems_of(core_with("dev", lambda c: c["namespaces"].pop("nodeLogs")))
    assert any(p.startswith("somaagenthub:core.namespaces.nodeLogs: required when core.observability.nodeLogs is set")
               for p in no_namespace), no_namespace
    no_agent = problems_of(core_with("prod", lambda c: c["observability"].pop("nodeLogs")), "prod")
    assert any(p.startswith("somaagenthub:core.namespaces.nodeLogs: core.observability.nodeLogs is not set") for p in no_agent), no_agent


def test_a_stack_without_the_node_log_agent_has_no_node_logs_namespace():
    def without(core):
        core["namespaces"].pop("nodeLogs")
        core["observability"].pop("nodeLogs")

    s = parse(core_with("dev", without))
    assert s.core.observability.node_logs is None and s.core.namespaces.node_logs is None
    assert s.workload_namespaces() == s.all_namespaces()


def test_the_node_log_namespace_is_created_but_runs_no_workload():
    s = parse(stack_config("prod"), "prod")
    assert s.core.namespaces.node_logs.name in s.all_namespaces()
    assert s.core.namespaces.node_logs.name not in s.workload_namespaces()
    assert set(s.all_namespaces()) - set(s.workload_namespaces()) == {s.core.namespaces.node_logs.name}


def test_the_retired_node_agent_switch_is_an_unknown_key():
    found = problems_of(core_with("dev", lambda c: c["observability"]["collector"].update(nodeAgent=True)))
    assert any(p.startswith("somaagenthub:core.observability.collector.nodeAgent: unknown key") for p in found), found
