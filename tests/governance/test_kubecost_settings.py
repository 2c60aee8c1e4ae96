"""governance.kubecost: refused until the catalog pins Kubecost's images, and the cost namespace it needs."""
from __future__ import annotations

import pytest

from components import settings as platform_settings
from tests.helpers import config_with, refused, stack_block

KUBECOST = {"model": {"cpuRequest": "200m", "memoryRequest": "512Mi", "cpuLimit": "1", "memoryLimit": "2Gi"},
            "frontend": {"cpuRequest": "10m", "memoryRequest": "64Mi", "cpuLimit": "200m", "memoryLimit": "256Mi"},
            "aggregator": {"cpuRequest": "100m", "memoryRequest": "256Mi", "cpuLimit": "500m", "memoryLimit": "1Gi"},
            "storage": "8Gi", "ingestSchedule": "7 * * * *"}


def governance(stack: str, **changes) -> dict:
    return stack_block(stack, "governance", **changes)


def problems(stack: str, block: dict) -> str:
    return "\n".join(refused(stack, governance=block))


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_both_stacks_have_the_cost_namespace_in_the_mesh_and_no_kubecost_yet(stack):
    parsed = platform_settings.parse(config_with(stack), stack)
    assert parsed.governance.namespaces["cost"].name == "soma-cost"
    assert "governance.cost" in parsed.mesh.istio.members
    assert parsed.governance.kubecost is None


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_kubecost_is_refused_while_its_images_are_not_pinned(stack):
    text = problems(stack, governance(stack, kubecost=KUBECOST))
    assert "somaagenthub:governance.kubecost" in text
    assert "kubecost-cost-model" in text and "kubecost-frontend" in text
    assert "docs/architecture/cost.md" in text


def test_kubecost_is_accepted_once_the_catalog_pins_its_images(monkeypatch):
    monkeypatch.setattr(platform_settings, "_kubecost_images_missing", lambda: [])
    parsed = platform_settings.parse(config_with("dev", governance=governance("dev", kubecost=KUBECOST)), "dev")
    assert parsed.governance.kubecost.storage == "8Gi"
    assert parsed.governance.kubecost.ingest_schedule == "7 * * * *"


def test_kubecost_needs_the_cost_namespace(monkeypatch):
    monkeypatch.setattr(platform_settings, "_kubecost_images_missing", lambda: [])
    block = governance("dev", kubecost=KUBECOST)
    del block["namespaces"]["cost"]
    assert "somaagenthub:governance.namespaces.cost" in problems("dev", block)


def test_a_bad_ingest_schedule_is_named(monkeypatch):
    monkeypatch.setattr(platform_settings, "_kubecost_images_missing", lambda: [])
    text = problems("dev", governance("dev", kubecost={**KUBECOST, "ingestSchedule": "@hourly"}))
    assert "governance.kubecost.ingestSchedule" in text
