"""Small readers over a rendered plan, shared by the tests."""
from __future__ import annotations

import json
from typing import Any, Iterator

import yaml

from tools.render import kubernetes_objects, stack_config

POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}


def objects(plan: dict, kind: str | None = None) -> list[dict]:
    found = [r["inputs"] for r in kubernetes_objects(plan)]
    return [o for o in found if kind is None or o["kind"] == kind]


def platform_quotas(plan: dict) -> dict[str, dict]:
    """``{namespace: spec.hard}`` of the platform's own ResourceQuota in each namespace; a chart's scoped
    quota beside it (Gatekeeper's, for its critical-priority pods) is not the namespace's ceiling."""
    from components.kit.namespace import QUOTA_NAME

    return {q["metadata"]["namespace"]: q["spec"]["hard"] for q in objects(plan, "ResourceQuota") if q["metadata"]["name"] == QUOTA_NAME}


def by_type(plan: dict, type_token: str) -> list[dict]:
    return [r for r in plan["resources"] if r["type"] == type_token]


def pod_specs(plan: dict) -> Iterator[tuple[dict, dict]]:
    """(object, pod spec) for every object that carries a pod template."""
    for obj in objects(plan):
        if obj["kind"] in POD_TEMPLATE_KINDS:
            yield obj, obj["spec"]["template"]["spec"]
        elif obj["kind"] == "CronJob":
            yield obj, obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        elif obj["kind"] == "Pod":
            yield obj, obj["spec"]


def strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)
    elif isinstance(value, str):
        yield value


def config_with(stack: str, **changes: Any) -> dict[str, str]:
    """The stack's config with top-level keys replaced, e.g. ``phases={...}``."""
    config = stack_config(stack)
    for key, value in changes.items():
        config[f"somaagenthub:{key}"] = value if isinstance(value, str) else json.dumps(value)
    return config


def stack_document(stack: str) -> dict:
    from tools.render import ROOT

    return yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]


def stack_block(stack: str, key: str, **changes: Any) -> dict:
    """A copy of the stack file's ``somaagenthub:<key>`` block with some of its keys replaced."""
    import copy

    return {**copy.deepcopy(stack_document(stack)[f"somaagenthub:{key}"]), **changes}


def refused(stack: str, **changes: Any) -> list[str]:
    """The problems settings report for the stack's config with top-level keys replaced; fails the test
    when settings accept it."""
    import pytest

    from components.config_schema import SettingsError
    from components.settings import parse

    with pytest.raises(SettingsError) as caught:
        parse(config_with(stack, **changes), stack)
    return caught.value.problems


def rule_values(stack: str) -> dict[str, str]:
    """The values the stack fills the alert and dashboard placeholders with (``<<ns.data>>`` ...)."""
    from components import settings
    from components.core.data.common import ClientNamespaces
    from components.core.observability import placeholders

    loaded = settings.parse(stack_config(stack), stack)
    return placeholders.values(loaded.core, ClientNamespaces.of(loaded).phases)


def waits_for(plan: dict, resource: dict, target: str) -> bool:
    """``resource`` waits for ``target``: through its dependencies, transitively, or through those of
    the charts above it (the engine calls a chart's Construct only once the chart's dependencies are
    done, so its children are registered after them)."""
    by_urn = {r["urn"]: r for r in plan["resources"]}
    todo, seen = list(resource["dependencies"]), set()
    parent = by_urn.get(resource["parent"])
    while parent is not None:
        if parent["type"] == "kubernetes:helm.sh/v4:Chart":
            todo.append(parent["urn"])
            todo += parent["dependencies"]
        parent = by_urn.get(parent["parent"])
    while todo:
        urn = todo.pop()
        if urn == target:
            return True
        if urn not in seen and urn in by_urn:
            seen.add(urn)
            todo += by_urn[urn]["dependencies"]
    return False
