"""The real steps a promotion runs at a commit: the checkout, the gate over a real rendered plan, the mirror check.

The plan is the session's rendered prod stack (tests/conftest.py ``rendered``); the gate and the mirror
check run as subprocesses of the tree, as they do for a release's commit.
"""
from __future__ import annotations

import copy
import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from components import catalog
from tools.ops.commit_tree import CommitTree, TreeError, checkout
from tools.ops.release import release_digests, release_id

ROOT = Path(__file__).resolve().parents[2]
IS_GIT = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True).returncode == 0


def _show(path: str) -> bytes:
    return subprocess.run(["git", "-C", str(ROOT), "show", f"HEAD:{path}"], capture_output=True, check=True).stdout


@pytest.fixture(scope="module")
def here():
    return CommitTree(path=ROOT, commit="HEAD")


def test_the_real_gate_passes_the_rendered_prod_plan_and_refuses_a_floating_image(rendered, here, tmp_path):
    plan, _, folder = rendered["prod"]
    summary = here.gate("prod", folder / "plan.json")
    assert summary.result == "passed" and summary.findings["mandatory"] == 0
    assert summary.resources == len(plan["resources"]) and "digest-pinned-images" in summary.rules
    bad = copy.deepcopy(plan)
    target = next(r for r in bad["resources"] if r["inputs"].get("kind") == "Deployment")
    target["inputs"]["spec"]["template"]["spec"]["containers"][0]["image"] = "docker.io/library/nginx:latest"
    (tmp_path / "plan.json").write_text(json.dumps(bad))
    refused = here.gate("prod", tmp_path / "plan.json")
    assert refused.result == "failed" and refused.findings["mandatory"] >= 1
    assert any(target["urn"] in line and "nginx:latest" in line for line in refused.blocking)


def test_the_mirror_check_of_the_rendered_prod_stack_refuses_without_a_mirror_report(rendered, here, tmp_path):
    _, _, folder = rendered["prod"]
    assert here.mirror_check("prod", folder, tmp_path / "no-report.json") == [
        "no mirror report: run `make mirror STACK=<stack>` (tools/mirror) before promoting"]


@pytest.mark.skipif(not IS_GIT, reason="the promotion checks commits out of a git repository; this copy is not one")
def test_a_checkout_is_the_commits_lock_and_stack_files_and_is_removed_afterwards():
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    with checkout(ROOT, "HEAD") as tree:
        path = tree.path
        assert tree.commit == head and (path / "__main__.py").is_file()
        digests = release_digests(catalog.parse(catalog.read_document(_show("platform.lock.yaml").decode())))
        assert tree.release() == (digests, release_id(digests))
        assert tree.settings_hash("prod") == "sha256:" + hashlib.sha256(_show("Pulumi.prod.yaml")).hexdigest()
        registry, signatures = tree.admission("prod")
        assert registry != "upstream" and signatures.verify_by == "platformKey"
        with pytest.raises(TreeError, match="has no Pulumi.qa.yaml: stack qa did not exist there"):
            tree.settings_hash("qa")
    assert not path.exists()
    assert str(path) not in subprocess.run(["git", "-C", str(ROOT), "worktree", "list"], capture_output=True, text=True).stdout
    with pytest.raises(TreeError, match="rev-parse"):
        with checkout(ROOT, "0" * 40):
            pass


def test_the_trees_migration_listing_and_check_are_the_apps_real_steps(here, tmp_path):
    steps = here.migration_steps()
    assert [s["version"] for s in steps["orchestrator"]] == [1, 2] and steps["identity"][0]["change"] == "expand"
    summary, refused = here.migration_check(tmp_path)
    assert refused == [] and summary.endswith("one release back stays safe")
