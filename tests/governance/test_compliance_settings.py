"""``governance.compliance`` settings: bad values are refused with the key that holds them."""
from __future__ import annotations

import json

import pytest

from components import settings
from components.config_schema import SettingsError
from tests.helpers import config_with
from tools.render import stack_config


def governance_with(stack: str, edit) -> dict[str, str]:
    governance = json.loads(stack_config(stack)["somaagenthub:governance"])
    edit(governance)
    return config_with(stack, governance=governance)


def problems(config: dict[str, str], stack: str) -> list[str]:
    with pytest.raises(SettingsError) as caught:
        settings.parse(config, stack)
    return caught.value.problems


def test_both_stacks_set_compliance_and_prod_fetches_the_plugin_from_its_mirror():
    dev = settings.parse(stack_config("dev"), "dev").governance.compliance
    prod = settings.parse(stack_config("prod"), "prod").governance.compliance
    assert dev.plugin_source.url.startswith("https://grafana.com/")
    assert not prod.plugin_source.url.startswith("https://grafana.com/")


def test_a_mandatory_stack_refuses_grafana_com_as_the_plugin_source():
    def edit(g):
        g["compliance"]["pluginSource"]["url"] = json.loads(stack_config("dev")["somaagenthub:governance"])["compliance"]["pluginSource"]["url"]
    found = problems(governance_with("prod", edit), "prod")
    assert any(p.startswith("somaagenthub:governance.compliance.pluginSource.url: policyEnforcement is mandatory") for p in found), found


@pytest.mark.parametrize("field, value, message", [
    ("url", "http://grafana.com/x.zip", "https URL"),
    ("cidr", "0.0.0.0/0", "too broad"),
    ("why", "  ", "say which host"),
])
def test_a_bad_plugin_source_names_its_key(field, value, message):
    def edit(g):
        g["compliance"]["pluginSource"][field] = value
    found = problems(governance_with("dev", edit), "dev")
    assert any(f"governance.compliance.pluginSource.{field}" in p and message in p for p in found), found


def test_compliance_without_the_governance_phase_is_refused():
    config = governance_with("dev", lambda g: None)
    config["somaagenthub:phases"] = json.dumps({"core": True, "mesh": True, "governance": False, "agents": False, "ops": False})
    found = problems(config, "dev")
    assert any("governance.compliance: set, but phase governance is off" in p for p in found), found


def test_without_compliance_core_has_no_clickhouse_data_source_to_build():
    config = governance_with("dev", lambda g: g.pop("compliance"))
    parsed = settings.parse(config, "dev")
    from components.core.data import ClientNamespaces

    assert parsed.governance.compliance is None and ClientNamespaces.of(parsed).compliance is None
