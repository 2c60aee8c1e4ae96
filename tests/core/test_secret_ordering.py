"""Every pod waits for the Secrets it reads: a workload, job, chart or operator resource that names a
Secret External Secrets delivers depends on that ExternalSecret (directly, through its chart, or
through what it waits for), so no pod starts with a missing credential and crash-loops until the
sync catches up."""
from __future__ import annotations

import copy

import pytest

from components.kit.context import secret_names
from tests.helpers import waits_for


def delivered(plan: dict) -> dict[tuple[str, str], str]:
    """(namespace, Secret name) -> the URN of the ExternalSecret that writes it."""
    return {(r["inputs"]["metadata"]["namespace"], r["inputs"]["spec"]["target"]["name"]): r["urn"]
            for r in plan["resources"] if r["inputs"].get("kind") == "ExternalSecret"}


def readers_not_waiting(plan: dict) -> list[str]:
    sources = delivered(plan)
    late = []
    for r in plan["resources"]:
        inputs = r["inputs"]
        if inputs.get("kind") in (None, "CustomResourceDefinition", "ExternalSecret"):
            continue
        namespace = (inputs.get("metadata") or {}).get("namespace")
        for name in sorted(secret_names(inputs.get("spec", {}))):
            source = sources.get((namespace, name))
            if source and not waits_for(plan, r, source):
                late.append(f"{inputs['kind']} {namespace}/{inputs['metadata']['name']} reads {name} without waiting for it")
    return late


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_reader_of_a_delivered_secret_waits_for_it(plans, stack):
    plan = plans[stack]
    readers = [r for r in plan["resources"] if any(
        (r["inputs"].get("metadata") or {}).get("namespace") == ns and name in secret_names(r["inputs"].get("spec", {}))
        for ns, name in delivered(plan))]
    assert len(readers) >= 10, "the stack's pods read many delivered Secrets; the check must see them"
    assert readers_not_waiting(plan) == []


def test_the_check_notices_a_workload_that_does_not_wait(plans):
    plan = copy.deepcopy(plans["prod"])
    (minio,) = [r for r in plan["resources"] if r["inputs"].get("kind") == "StatefulSet" and r["inputs"]["metadata"]["name"] == "minio"]
    source = delivered(plan)[("soma-data", "minio-root")]
    minio["dependencies"] = [d for d in minio["dependencies"] if d != source]
    for r in plan["resources"]:  # and nothing it waits for leads there either
        if r["urn"] in minio["dependencies"] or r["urn"] == minio["parent"]:
            r["dependencies"] = []
    assert "StatefulSet soma-data/minio reads minio-root without waiting for it" in readers_not_waiting(plan)
