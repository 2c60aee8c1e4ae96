"""The gate refuses input it cannot judge honestly, with exit 2 and a message naming the problem."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from policies.config import load_config_file, stack_config_path
from tools.gate import GateError, run_gate
from tools.render import ROOT


def gate(tmp_path, plan, stack="prod", config=None):
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan))
    args = [sys.executable, "-m", "tools.gate", "--stack", stack, "--plan", str(path)]
    if config:
        args += ["--config", str(config)]
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True)


@pytest.mark.parametrize(
    "resource, missing",
    [({"type": "x"}, "urn"), ({"type": "x", "urn": "u"}, "inputs"), ({"urn": "u", "inputs": {}}, "type")],
)
def test_a_resource_without_the_plan_fields_is_unusable_input(tmp_path, resource, missing):
    result = gate(tmp_path, {"stack": "prod", "resources": [resource]})
    assert result.returncode == 2
    assert f"has no valid '{missing}'" in result.stderr


def test_a_mandatory_stack_cannot_be_judged_with_an_advisory_config(plans):
    with pytest.raises(GateError, match="declares policyEnforcement: mandatory"):
        run_gate(plans["prod"], load_config_file(stack_config_path("dev")))
    assert run_gate(plans["prod"], load_config_file(stack_config_path("prod"))).passed


def test_the_cli_says_which_config_to_use(tmp_path, plans):
    result = gate(tmp_path, plans["prod"], config=stack_config_path("dev"))
    assert result.returncode == 2 and "use the stack's own config" in result.stderr
