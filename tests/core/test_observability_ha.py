"""High availability that is real (issue 10, point 1), read from the settings and the rendered plans.

* Tempo: what runs is what the settings say. The only Tempo chart vendored is the monolithic one,
  whose replicas do not coordinate, so ``mode: scalable`` and more than one replica are refused
  with the key named, an HA stack must say why one replica is acceptable, and the rendered Tempo is
  one single-binary pod in both stacks.

The collector's one exporter per Prometheus replica is shown in test_core_observability.py
(``test_every_prometheus_replica_is_a_target_of_the_collector``).
"""
from __future__ import annotations

import json

import pytest

from components import settings as platform_settings
from components.config_schema import SettingsError
from tests.helpers import config_with, objects
from tools.render import stack_config

STACKS = ("dev", "prod")


def loaded(stack: str) -> platform_settings.PlatformSettings:
    return platform_settings.parse(stack_config(stack), stack)


def problems(stack: str, edit) -> list[str]:
    core = json.loads(stack_config(stack)["somaagenthub:core"])
    edit(core)
    with pytest.raises(SettingsError) as caught:
        platform_settings.parse(config_with(stack, core=core), stack)
    return caught.value.problems


# --- Tempo ----------------------------------------------------------------------------------------

def test_scalable_tempo_is_refused_naming_the_key():
    found = problems("prod", lambda c: c["observability"]["tempo"].update(mode="scalable", replicas=3))
    assert any(p.startswith("somaagenthub:core.observability.tempo.mode: 'scalable' needs the tempo-distributed chart") for p in found)
    assert any(p.startswith("somaagenthub:core.observability.tempo.replicas: single-binary Tempo replicas do not coordinate")
               and p.endswith("got 3") for p in found)


def test_a_second_single_binary_tempo_is_refused_in_dev_too():
    found = problems("dev", lambda c: c["observability"]["tempo"].update(replicas=2))
    assert found == ["somaagenthub:core.observability.tempo.replicas: single-binary Tempo replicas do not coordinate "
                     "(each compacts the shared bucket and keeps its own recent traces), so exactly 1 runs; got 2"]


def test_a_highly_available_stack_says_why_one_tempo_is_enough():
    found = problems("prod", lambda c: c["observability"]["tempo"].pop("singleReplicaReason"))
    assert found == ["somaagenthub:core.observability.tempo.singleReplicaReason: highAvailability is on, and Tempo "
                     "runs one replica; say why that is acceptable for this stack"]
    assert loaded("prod").core.observability.tempo.single_replica_reason.strip()


@pytest.mark.parametrize("stack", STACKS)
def test_the_rendered_tempo_is_the_one_single_binary_the_settings_name(plans, stack):
    tempo = loaded(stack).core.observability.tempo
    assert (tempo.mode, tempo.replicas) == ("single-binary", 1)
    ns = loaded(stack).core.namespaces.observability.name
    workloads = [o for o in objects(plans[stack]) if o["kind"] in ("Deployment", "StatefulSet")
                 and o["metadata"]["namespace"] == ns
                 and o["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/name") == "tempo"]
    assert [(w["kind"], w["metadata"]["name"], w["spec"]["replicas"]) for w in workloads] == [("StatefulSet", "tempo", 1)]
    (container,) = [c for c in workloads[0]["spec"]["template"]["spec"]["containers"] if c["name"] == "tempo"]
    # no -target flag: Tempo's default target "all" runs every component in the one process
    assert not [a for a in container["args"] if a.startswith("-target")], container["args"]
