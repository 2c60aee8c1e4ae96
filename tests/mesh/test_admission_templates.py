"""The admission templates: vendored as recorded, and their constraints validated as Gatekeeper's CRDs would."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from components.mesh.admission.policies import HERE, LIBRARY, constraints, templates
from policies.catalog import content_digest
from tests.verification import installed_crd_validators

LOCK = yaml.safe_load((HERE / "library.lock.yaml").read_text())
MIRROR = Path("/work/.mirror/open-policy-agent+gatekeeper-library/repo")


def test_library_digest_is_the_recorded_one():
    assert content_digest(LIBRARY) == LOCK["digest"]


@pytest.mark.skipif(not MIRROR.exists(), reason="gatekeeper-library mirror not on this machine")
def test_library_files_are_upstream_bytes_at_the_commit():
    for folder, path in LOCK["templates"].items():
        upstream = subprocess.run(["git", "-C", str(MIRROR), "show", f"{LOCK['commit']}:{path}"], capture_output=True, check=True).stdout
        assert (LIBRARY / folder / "template.yaml").read_bytes() == upstream, folder
    license_text = subprocess.run(["git", "-C", str(MIRROR), "show", f"{LOCK['commit']}:LICENSE"], capture_output=True, check=True).stdout
    assert (LIBRARY / "LICENSE").read_bytes() == license_text


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_constraints_validate_against_their_template_schema_and_a_wrong_parameter_does_not(stack):
    docs = [{"apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate", "spec": t.document["spec"]} for t in templates()]
    validators = installed_crd_validators(docs)
    for c in constraints(stack, "deny"):
        doc = c.document()
        validator = validators[("constraints.gatekeeper.sh", "v1beta1", doc["kind"])]
        assert not list(validator.iter_errors(doc)), doc["kind"]
    ports = next(c for c in constraints(stack, "deny") if c.template.kind == "K8sPSPHostNetworkingPorts").document()
    ports["spec"]["parameters"]["min"] = "zero"
    ports["spec"]["parameters"]["hostNetwrok"] = True
    errors = list(validators[("constraints.gatekeeper.sh", "v1beta1", "K8sPSPHostNetworkingPorts")].iter_errors(ports))
    assert len(errors) >= 2


def test_prod_denies_dev_audits_and_waivers_come_from_the_pack_allow_list():
    prod = {c.template.kind: c for c in constraints("prod", "deny")}
    assert {c.enforcement_action for c in prod.values()} == {"deny"}
    # the node log agent's one hostPath, waived in policies/config/prod.json, exempts its namespace from the
    # host-filesystem template only
    assert "soma-node-logs" in prod["K8sPSPHostFilesystem"].excluded_namespaces
    for kind in ("K8sPSPHostNamespace", "K8sPSPHostNetworkingPorts", "K8sPSPPrivilegedContainer", "SomaRunAsNonRoot"):
        assert "soma-node-logs" not in prod[kind].excluded_namespaces, kind


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_workload_kind_of_the_plan_is_judged_when_applied(plans, stack):
    """Each kind that carries a pod template in the plan has an ExpansionTemplate whose templateSource
    finds that template in the plan's own objects, so Gatekeeper refuses the workload at apply time."""
    from components.mesh.admission.expansion import API
    from tests.helpers import pod_specs

    plan = plans[stack]
    expansions = [r["inputs"] for r in plan["resources"] if r["inputs"].get("kind") == "ExpansionTemplate"]
    assert expansions and all(e["apiVersion"] == API and e["spec"]["generatedGVK"]["kind"] == "Pod" for e in expansions)
    source_of = {kind: e["spec"]["templateSource"] for e in expansions for a in e["spec"]["applyTo"] for kind in a["kinds"]}
    carriers = {obj["kind"]: obj for obj, _ in pod_specs(plan) if obj["kind"] != "Pod"}
    assert {"Deployment", "StatefulSet", "DaemonSet", "CronJob"} <= set(carriers)
    for kind, obj in carriers.items():
        assert kind in source_of, f"{kind} is not expanded: its bad pod templates would be refused only pod by pod"
        template = obj
        for step in source_of[kind].split("."):
            template = template[step]
        assert "containers" in template["spec"], (kind, source_of[kind])
