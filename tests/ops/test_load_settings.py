"""ops.loadTests: refused while the k6 controller image has no pinned digest, in prod unless a stack says why,
without the gateway or Vault, and with a scenario name the scenarios file does not declare."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from components import settings as platform_settings
from components.config_schema import SettingsError
from components.settings import LoadTestSettings, Resources
from tests.helpers import config_with, refused, stack_block

LOAD_TESTS = {"operator": {"cpuRequest": "50m", "memoryRequest": "64Mi", "cpuLimit": "200m", "memoryLimit": "128Mi"},
              "runner": {"cpuRequest": "250m", "memoryRequest": "256Mi", "cpuLimit": "1", "memoryLimit": "512Mi"},
              "scenarios": ["tool-list", "workflow-run"], "rateScale": 0.25}


def ops(stack: str, **changes) -> dict:
    return stack_block(stack, "ops", **changes)


def problems(stack: str, block: dict) -> str:
    return "\n".join(refused(stack, ops=block))


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_no_stack_sets_load_tests_yet(stack):
    assert platform_settings.parse(config_with(stack), stack).ops.load_tests is None


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_load_tests_are_refused_while_the_controller_image_is_not_pinned(stack):
    text = problems(stack, ops(stack, loadTests=LOAD_TESTS))
    assert "somaagenthub:ops.loadTests: platform.lock.yaml pins no k6-operator-controller by digest" in text
    assert "docs/load-tests.md" in text
    # the gateway is not deployed by these stacks either (its image is not pinned), and that is said too
    assert "the TestRuns target the gateway (agents.services.gateway), which this stack does not deploy" in text


def test_the_values_are_read_typed(monkeypatch):
    monkeypatch.setattr(platform_settings, "_load_test_problems", lambda s: [])
    parsed = platform_settings.parse(config_with("dev", ops=ops("dev", loadTests=LOAD_TESTS)), "dev")
    tests = parsed.ops.load_tests
    assert (tests.scenarios, tests.rate_scale, tests.token_path, tests.runner.memory_limit) == (("tool-list", "workflow-run"), 0.25,
                                                                                                "ops/load-tests/token", "512Mi")
    with pytest.raises(SettingsError, match="rateScale"):
        platform_settings.parse(config_with("dev", ops=ops("dev", loadTests={**LOAD_TESTS, "rateScale": 50})), "dev")


def stand_in(stack="staging", reason=None, scenarios=(), gateway=True, vault=True, ops_namespace=True):
    """The fields the load-test rule reads, without building a whole stack."""
    tests = LoadTestSettings(operator=Resources("50m", "64Mi", "200m", "128Mi"), runner=Resources("250m", "256Mi", "1", "512Mi"),
                             scenarios=tuple(scenarios), production_reason=reason)
    return SimpleNamespace(
        stack=stack, ops=SimpleNamespace(load_tests=tests, namespaces={"ops": object()} if ops_namespace else {}),
        agents=SimpleNamespace(services=SimpleNamespace(enabled=lambda: ("gateway",) if gateway else ())),
        phases=SimpleNamespace(agents=True), core=SimpleNamespace(vault=SimpleNamespace(configure=vault)))


@pytest.fixture
def pinned(monkeypatch):
    monkeypatch.setattr(platform_settings, "_load_test_images_missing", lambda: [])


def test_a_stack_with_the_images_gateway_and_vault_is_accepted(pinned):
    assert platform_settings._load_test_problems(stand_in()) == []
    assert platform_settings._load_test_problems(stand_in(scenarios=["tool-list"])) == []


def test_prod_needs_a_reason(pinned):
    (message,) = platform_settings._load_test_problems(stand_in("prod"))
    assert message.startswith("somaagenthub:ops.loadTests.productionReason: load tests do not run in prod")
    assert platform_settings._load_test_problems(stand_in("prod", reason="capacity test before the launch, agreed with ops")) == []


@pytest.mark.parametrize("change, message", [
    ({"scenarios": ["nope"]}, "somaagenthub:ops.loadTests.scenarios: no scenario nope in scenarios.yaml"),
    ({"gateway": False}, "which this stack does not deploy"),
    ({"vault": False}, "core.vault.configure is false"),
    ({"ops_namespace": False}, "somaagenthub:ops.namespaces.ops: the k6 operator and its runners run there"),
])
def test_what_a_load_test_needs_is_named(pinned, change, message):
    assert any(message in p for p in platform_settings._load_test_problems(stand_in(**change)))
