"""The release workflow for a real CI runs the same pipeline commands, pinned, signing keyless.

It cannot run here (no runner); these checks keep it from drifting from the local pipeline: every
action pinned by commit, Trivy pinned, the scan feeding the same gate, keyless signing with the
workflow's own identity verified before the catalog changes.
"""
from __future__ import annotations

import re
from pathlib import Path

import yaml

WORKFLOW = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "release.yml"


def steps() -> list[dict]:
    return yaml.safe_load(WORKFLOW.read_text())["jobs"]["images"]["steps"]


def test_every_action_is_pinned_by_a_full_commit_and_trivy_by_version():
    uses = [s["uses"] for s in steps() if "uses" in s]
    assert uses and all(re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", u) for u in uses), uses
    trivy = next(s for s in steps() if s.get("uses", "").startswith("aquasecurity/setup-trivy@"))
    assert re.fullmatch(r"v\d+\.\d+\.\d+", trivy["with"]["version"])


def test_the_workflow_runs_build_scan_gate_release_in_that_order():
    runs = "\n".join(s.get("run", "") for s in steps())
    order = [runs.index(c) for c in ("-m tools.images build", "trivy image", "-m tools.images gate", "-m tools.images release")]
    assert order == sorted(order)
    assert "--format json" in runs and "--exit-code 0" in runs  # the gate, not Trivy, decides


def test_signing_is_keyless_with_the_workflows_own_oidc_identity():
    job = yaml.safe_load(WORKFLOW.read_text())["jobs"]["images"]
    assert job["permissions"]["id-token"] == "write"
    release = next(s["run"] for s in steps() if "-m tools.images release" in s.get("run", ""))
    assert '--identity "$IDENTITY"' in release and '--issuer "$ISSUER"' in release and "--key" not in release
    assert job["env"]["IDENTITY"] == "https://github.com/${{ github.workflow_ref }}"
    assert job["env"]["ISSUER"] == "https://token.actions.githubusercontent.com"


MIRROR = WORKFLOW.with_name("mirror.yml")


def test_the_mirror_workflow_pins_the_same_actions_and_trivy_and_runs_the_mirror_for_prod():
    mirror_steps = yaml.safe_load(MIRROR.read_text())["jobs"]["mirror"]["steps"]
    assert {s["uses"] for s in mirror_steps if "uses" in s} <= {s["uses"] for s in steps() if "uses" in s}
    trivy = next(s for s in mirror_steps if s.get("uses", "").startswith("aquasecurity/setup-trivy@"))
    release_trivy = next(s for s in steps() if s.get("uses", "").startswith("aquasecurity/setup-trivy@"))
    assert trivy["with"]["version"] == release_trivy["with"]["version"]
    run = next(s["run"] for s in mirror_steps if "-m tools.mirror run" in s.get("run", ""))
    assert "--stack prod" in run and '--public-key "$RUNNER_TEMP/platform.pub"' in run
