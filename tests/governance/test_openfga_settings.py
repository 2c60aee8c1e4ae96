"""OpenFGA's settings: refused with the key named when they would break what the stack promises."""
from __future__ import annotations

import json

import pytest

from components.config_schema import SettingsError
from components.settings import parse
from tests.helpers import stack_config


def governance_with(stack: str, **openfga) -> dict:
    config = stack_config(stack)
    governance = json.loads(config["somaagenthub:governance"]) if isinstance(config["somaagenthub:governance"], str) else config["somaagenthub:governance"]
    governance["openfga"] = {**governance["openfga"], **openfga}
    config["somaagenthub:governance"] = json.dumps(governance)
    return config


def test_both_stacks_install_openfga_and_prod_runs_it_highly_available():
    dev, prod = (parse(stack_config(s), s).governance.openfga for s in ("dev", "prod"))
    assert dev is not None and prod is not None and prod.replicas >= 2


def test_a_highly_available_stack_refuses_a_single_openfga_server():
    with pytest.raises(SettingsError) as err:
        parse(governance_with("prod", replicas=1), "prod")
    assert "somaagenthub:governance.openfga.replicas: highAvailability is on" in str(err.value)
    assert parse(governance_with("dev", replicas=1), "dev").governance.openfga.replicas == 1


@pytest.mark.parametrize("key, value", [("store", "Soma Agent Hub"), ("traceSampleRatio", 2), ("replicas", 0)])
def test_malformed_values_are_refused_by_key(key, value):
    with pytest.raises(SettingsError) as err:
        parse(governance_with("dev", **{key: value}), "dev")
    assert f"governance.openfga.{key}" in str(err.value)
