"""The real engine path: `pulumi preview` with the policy pack, on a machine that has the CLI and a cluster.

Our machines have neither, so these tests skip with the reason; on a workstation or a real CI,
set SOMA_CLUSTER_TESTS=1 after `kind create cluster` and the Vault bootstrap of
docs/runbooks/core-secrets.md, and they run the same commands the README documents.
"""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tools.render import ROOT

needs_cli = pytest.mark.skipif(shutil.which("pulumi") is None, reason="the Pulumi CLI is not on PATH (not installable here)")
needs_cluster = pytest.mark.skipif(
    os.environ.get("SOMA_CLUSTER_TESTS") != "1",
    reason="needs a kube context and a bootstrapped Vault; set SOMA_CLUSTER_TESTS=1 where they exist",
)


def pulumi(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["pulumi", *args, "--non-interactive"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)


@pytest.fixture
def local_backend(tmp_path):
    env = {**os.environ, "PULUMI_BACKEND_URL": f"file://{tmp_path}", "PULUMI_CONFIG_PASSPHRASE": ""}
    for stack in ("dev", "staging", "prod"):
        pulumi("stack", "init", stack, env=env)
    return env


@needs_cli
@needs_cluster
@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_preview_passes_the_policy_pack(local_backend, stack):
    result = pulumi(
        "preview", "-s", stack, "--policy-pack", "policies", "--policy-pack-config", f"policies/config/{stack}.json",
        env=local_backend,
    )
    assert result.returncode == 0, result.stdout + result.stderr
