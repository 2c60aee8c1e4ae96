"""Run a constraint's Rego as Gatekeeper would, offline, with regopy; and the gate's verdict on the same pods.

Gatekeeper evaluates ``data.<package>.violation`` with ``input = {"review": <AdmissionReview request>,
"parameters": <constraint spec.parameters>}``, the template's ``libs`` loaded beside it as ``data.lib.*``
modules. Its match (kinds Pod, ``excludedNamespaces``) is applied here before evaluation, as Gatekeeper does.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

import regopy

from components.mesh.admission.policies import Constraint, as_rego_v1, rego_modules
from policies.evaluate import check_resource
from policies.model import ResourceView, Violation
from policies.podspec import CONTAINER_FIELDS, pod_templates
from policies.rules import RULES_BY_NAME


def violations(constraint: Constraint, pod: Mapping[str, Any]) -> list[str]:
    """The messages ``constraint`` returns for creating ``pod`` (none when its match skips the namespace)."""
    if pod["metadata"].get("namespace") in constraint.excluded_namespaces:
        return []
    interpreter = regopy.Interpreter()
    for name, source in rego_modules(constraint.template):
        interpreter.add_module(name, as_rego_v1(source))
    review = {"kind": {"group": "", "version": "v1", "kind": "Pod"}, "operation": "CREATE",
              "namespace": pod["metadata"].get("namespace"), "object": pod}
    interpreter.set_input_term(json.dumps({"review": review, "parameters": dict(constraint.parameters)}))
    query = f"found := [v | some v; data.{constraint.template.package}.violation[v]]"
    count = interpreter.query(f"n := count([v | some v; data.{constraint.template.package}.violation[v]])")
    total = json.loads(str(count))["bindings"]["n"]
    if not total:
        return []
    try:
        return [str(v.get("msg")) for v in json.loads(str(interpreter.query(query)))["bindings"]["found"]]
    except (ValueError, KeyError):  # rego-cpp escapes quotes inside some messages badly; the count decides
        return [f"{total} violation(s) of {constraint.template.kind}"]


@dataclass(frozen=True)
class PlanPod:
    """One pod a plan resource starts, as the API server will be asked to create it."""

    resource: ResourceView
    index: int
    pod: dict

    @property
    def label(self) -> str:
        return f"{self.resource.resource_id}#{self.index}"


def plan_pods(resource: ResourceView) -> Iterator[PlanPod]:
    """Every pod of ``resource`` (workload templates, pod-template lists and operator pods, as the gate finds them)."""
    namespace = resource.props.get("metadata", {}).get("namespace") or ""
    for index, template in enumerate(pod_templates(resource)):
        if template.unresolved:
            continue
        spec = {k: copy.deepcopy(v) for k, v in template.spec.items() if k not in CONTAINER_FIELDS and v is not None}
        for container in template.containers:
            spec.setdefault(container.field, []).append(copy.deepcopy(container.spec))
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": f"{resource.props.get('metadata', {}).get('name', resource.name)}-{index}",
                            "namespace": namespace},
               "spec": spec}
        yield PlanPod(resource, index, pod)


def gate_refuses(resource: ResourceView, rule: str, pack: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """The gate's unwaived violations of ``rule`` on ``resource`` under the stack's policy config ``pack``
    (every rule's block; unknowns aside: a rendered plan has none)."""
    return [o.message for o in check_resource(RULES_BY_NAME[rule], resource, pack[rule])
            if o.unresolved is None and not o.waived]


def with_pod_spec(resource: ResourceView, pod_index: int, spec: dict) -> ResourceView:
    """``resource`` whose ``pod_index``-th pod template is ``spec`` (Kubernetes workloads only)."""
    from policies.podspec import POD_SPEC_PATHS

    props = copy.deepcopy(dict(resource.props))
    node = props
    path = POD_SPEC_PATHS[resource.type]
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = spec
    return ResourceView.of(resource.type, resource.name, resource.urn, props)


__all__ = ["PlanPod", "Violation", "gate_refuses", "plan_pods", "violations", "with_pod_spec"]
