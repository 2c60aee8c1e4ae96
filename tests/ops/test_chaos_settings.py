"""ops.chaos: allowed in the staging stack only, in its own namespace, and only with its images pinned.

Staging's stack file sets ops.chaos; the refusals take staging's ops block into the other stacks' files, and
vary it in staging's.
"""
from __future__ import annotations

import json

import pytest

from components import catalog, settings
from tests.helpers import refused
from tools.render import stack_config

RESOURCES = {"cpuRequest": "25m", "memoryRequest": "128Mi", "cpuLimit": "500m", "memoryLimit": "512Mi"}
CHAOS = {"controllerReplicas": 2, "controller": RESOURCES, "daemon": RESOURCES}
CHAOS_NAMESPACE = {"name": "soma-chaos", "quota": {"requestsCpu": "1", "requestsMemory": "1Gi", "limitsCpu": "4", "limitsMemory": "4Gi",
                                                   "pods": 20, "storage": "1Gi", "persistentVolumeClaims": 0}}


def ops(chaos: dict | None = CHAOS, namespace: bool = True) -> dict:
    """Staging's ops block with ``chaos`` (None: left out) and with or without its namespace."""
    current = json.loads(stack_config("staging")["somaagenthub:ops"])
    current["namespaces"] = {k: v for k, v in current["namespaces"].items() if k != "chaos"}
    if namespace:
        current["namespaces"]["chaos"] = CHAOS_NAMESPACE
    current.pop("chaos", None)
    if chaos is not None:
        current["chaos"] = chaos
    return current


def problems(stack: str, **changes) -> list[str]:
    return refused(stack, **changes)


def test_staging_runs_chaos_in_its_own_namespace():
    loaded = settings.parse(stack_config("staging"), "staging")
    assert loaded.ops.chaos.controller_replicas == 2 and loaded.ops.chaos.runtime == "containerd"
    assert loaded.ops.namespaces["chaos"].name == "soma-chaos"


@pytest.mark.parametrize("stack", ["prod", "dev"])
def test_any_other_stack_refuses_it_naming_the_key_and_why(stack):
    found = problems(stack, ops={**json.loads(stack_config(stack)["somaagenthub:ops"]), "chaos": CHAOS})
    assert any(p.startswith("somaagenthub:ops.chaos: fault injection runs only in the staging stack, not in " + stack) for p in found), found
    assert any("privileged" in p for p in found)
    assert all(p.startswith(("somaagenthub:ops.chaos", "somaagenthub:ops.namespaces.chaos")) for p in found), found


def test_chaos_needs_its_namespace_and_the_namespace_needs_chaos():
    assert any(p.startswith("somaagenthub:ops.namespaces.chaos: Chaos Mesh runs in its own namespace")
               for p in problems("staging", ops=ops(namespace=False)))
    assert any(p.startswith("somaagenthub:ops.namespaces.chaos: ops.chaos is not set")
               for p in problems("staging", ops=ops(chaos=None)))


def test_a_highly_available_stack_runs_two_controllers():
    found = problems("staging", ops=ops({**CHAOS, "controllerReplicas": 1}))
    assert any(p.startswith("somaagenthub:ops.chaos.controllerReplicas: highAvailability is on") for p in found), found


def test_a_bad_runtime_or_socket_is_named():
    found = problems("staging", ops=ops({**CHAOS, "runtime": "docker", "socketPath": "run/containerd.sock"}))
    assert any("ops.chaos.runtime" in p for p in found) and any("ops.chaos.socketPath" in p for p in found), found


def test_without_pinned_images_chaos_is_refused_saying_why(monkeypatch):
    real = catalog.load()
    unpinned = type(real)(**{**real.__dict__, "images": {k: v for k, v in real.images.items() if not k.startswith("chaos-mesh-")}})
    monkeypatch.setattr(catalog, "load", lambda *a, **k: unpinned)
    found = problems("staging", ops=ops())
    assert any(p.startswith("somaagenthub:ops.chaos: platform.lock.yaml pins no chaos-mesh-controller, chaos-mesh-daemon") for p in found), found
