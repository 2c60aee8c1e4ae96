"""docs/support.md states what the code enforces: the Kubernetes window and the stacks' versions."""
from pathlib import Path

import yaml

from components.settings import SUPPORTED_KUBERNETES

ROOT = Path(__file__).resolve().parents[2]


def test_the_support_doc_names_the_kubernetes_versions_settings_accept_and_the_stacks_run():
    text = (ROOT / "docs/support.md").read_text()
    supported_row = next(line for line in text.splitlines() if line.startswith("| Supported |"))
    assert ", ".join(SUPPORTED_KUBERNETES) in supported_row, "update docs/support.md with SUPPORTED_KUBERNETES"
    stacks = {path.name: (yaml.safe_load(path.read_text())["config"] or {}).get("somaagenthub:kubernetesVersion")
              for path in ROOT.glob("Pulumi.*.yaml")}
    stacks_row = next(line for line in text.splitlines() if line.startswith("| Stacks today |"))
    assert all(f"**{version}**" in stacks_row for version in stacks.values()), stacks
