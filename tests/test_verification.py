"""Every object of every stack is what a real API server would accept, named validly, images pinned."""
from __future__ import annotations

import copy

import pytest

from components import settings
from tests.helpers import objects
from tests.verification import CRD_SCHEMAS, NoSchema, crd_schema_path, installed_crd_validators, name_problem, validate
from tools.render import stack_config

STACKS = ("dev", "staging", "prod")

# Kinds the program may create for which ../shared/schemas/crds has no schema, each with why.
# Anything else without a schema fails the suite, by name.
NO_SCHEMA_EXPECTED: dict[str, str] = {}


def kubernetes_version(stack: str) -> str:
    return settings.parse(stack_config(stack), stack).kubernetes_version


@pytest.mark.parametrize("stack", STACKS)
def test_every_object_validates_against_its_schema(plans, stack):
    version = kubernetes_version(stack)
    problems, unknown = [], set()
    installed = installed_crd_validators(objects(plans[stack]))
    for obj in objects(plans[stack]):
        try:
            for problem in validate(obj, version, installed):
                problems.append(f"{obj['kind']}/{obj['metadata'].get('name')}: {problem}")
        except NoSchema as missing:
            unknown.add(str(missing))
    assert not problems, "\n".join(problems)
    unexplained = unknown - set(NO_SCHEMA_EXPECTED)
    assert not unexplained, f"kinds with no schema to validate against (add a schema or explain in NO_SCHEMA_EXPECTED): {sorted(unexplained)}"


@pytest.mark.parametrize("stack", STACKS)
def test_every_name_is_valid_dns_1123(plans, stack):
    problems = [p for p in map(name_problem, objects(plans[stack])) if p]
    assert not problems, problems


def test_validation_catches_a_field_the_api_server_would_reject(plans):
    policy = copy.deepcopy(objects(plans["dev"], "NetworkPolicy")[0])
    policy["spec"]["podSelectr"] = {}
    assert any("podSelectr" in p for p in validate(policy, "1.33"))


def test_custom_resources_are_checked_against_the_shared_crd_schemas():
    assert crd_schema_path("monitoring.coreos.com/v1", "ServiceMonitor") == CRD_SCHEMAS / "monitoring.coreos.com" / "servicemonitor_v1.json"
    bad = {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": {"name": "x"},
           "spec": {"endpoints": [{"port": 9090}]}}
    assert validate(bad, "1.33"), "a numeric port name must be refused by the ServiceMonitor schema"


def test_a_kind_nobody_knows_is_reported_not_passed():
    with pytest.raises(NoSchema, match="chaos-mesh.org/v1alpha1/PodChaos"):
        validate({"apiVersion": "chaos-mesh.org/v1alpha1", "kind": "PodChaos", "metadata": {"name": "x"}, "spec": {}}, "1.33")


def test_bad_names_are_caught():
    assert name_problem({"kind": "Namespace", "metadata": {"name": "Soma_Data"}})
    assert name_problem({"kind": "ConfigMap", "metadata": {"name": "a" * 254}})
    assert name_problem({"kind": "ConfigMap", "metadata": {"name": "grafana.dashboards"}}) is None
    assert name_problem({"kind": "ConfigMap", "metadata": {"name": "cert-manager-webhook:dynamic-serving"}})
    assert name_problem({"kind": "Role", "metadata": {"name": "cert-manager-webhook:dynamic-serving"}}) is None
    assert name_problem({"kind": "ClusterRole", "metadata": {"name": "system/escape"}})
