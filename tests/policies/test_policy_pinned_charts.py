"""pinned-charts on the vendored bytes: a chart folder that no longer matches its catalog digest is refused.

The samples cover the chart reference and its version; these tests change the files themselves.
They work on a copy of the real ``charts/vault`` (the fixture catalog records its digest), placed
in a temporary repository root, so the repository's own vendored charts are never touched.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from policy_support import FIXTURE_CATALOG, rule_config

from policies.catalog import REPO_ROOT
from policies.evaluate import check_resource
from policies.model import ResourceView
from policies.rules import RULES_BY_NAME
from policies.rules import pinned_charts

RULE = RULES_BY_NAME["pinned-charts"]
DRIFT = "the vendored files differ from platform.lock.yaml's digest"


def _messages(chart: str = "./charts/vault", version: str = "0.31.0", catalog: Path = FIXTURE_CATALOG) -> list[str]:
    view = ResourceView.of(
        "kubernetes:helm.sh/v4:Chart",
        "vault",
        "urn:pulumi:test::somaagenthub::kubernetes:helm.sh/v4:Chart::vault",
        {"chart": chart, "version": version, "namespace": "vault", "values": {}},
    )
    return [o.message for o in check_resource(RULE, view, rule_config(RULE, {"catalogPath": str(catalog)}))]


@pytest.fixture
def vendored_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository root holding a byte-identical copy of charts/vault; the rule reads folders from there."""
    root = tmp_path / "repo"
    shutil.copytree(REPO_ROOT / "charts" / "vault", root / "charts" / "vault")
    monkeypatch.setattr(pinned_charts, "REPO_ROOT", root)
    return root / "charts" / "vault"


def test_an_untouched_copy_of_the_vendored_chart_passes(vendored_copy: Path) -> None:
    assert _messages() == []


def test_an_edited_template_is_drift(vendored_copy: Path) -> None:
    assert _messages() == []  # checked once already, as the engine does for an earlier resource
    template = sorted((vendored_copy / "templates").glob("*.yaml"))[0]
    template.write_text(template.read_text() + "\n# hand edit\n")
    messages = _messages()
    assert len(messages) == 1 and DRIFT in messages[0], messages
    assert "sha256:7c91cb1962e03c6642b2b6462e4d63db28c7ac4f026e35eb287862f581d98393" in messages[0]


def test_an_added_file_is_drift(vendored_copy: Path) -> None:
    (vendored_copy / "templates" / "extra-configmap.yaml").write_text("apiVersion: v1\nkind: ConfigMap\n")
    assert any(DRIFT in m for m in _messages())


def test_a_removed_file_is_drift(vendored_copy: Path) -> None:
    sorted((vendored_copy / "templates").glob("*.yaml"))[-1].unlink()
    assert any(DRIFT in m for m in _messages())


def test_changed_default_values_are_drift(vendored_copy: Path) -> None:
    values = vendored_copy / "values.yaml"
    values.write_text(values.read_text().replace("enabled: true", "enabled: false", 1))
    assert any(DRIFT in m for m in _messages())


def test_a_catalog_entry_whose_folder_is_missing_is_refused(tmp_path: Path) -> None:
    catalog = yaml.safe_load(FIXTURE_CATALOG.read_text())
    catalog["charts"]["vault"]["vendored"]["path"] = "charts/vault-never-vendored"
    lock = tmp_path / "platform.lock.yaml"
    lock.write_text(yaml.safe_dump(catalog))
    messages = _messages("./charts/vault-never-vendored", catalog=lock)
    assert messages == [
        "chart './charts/vault-never-vendored': the vendored folder charts/vault-never-vendored is missing"
    ]


def test_a_catalog_digest_the_folder_does_not_match_is_refused(tmp_path: Path) -> None:
    """A catalog edited by hand (new digest, folder not re-vendored) is caught like an edited folder."""
    catalog = yaml.safe_load(FIXTURE_CATALOG.read_text())
    catalog["charts"]["vault"]["vendored"]["digest"] = "sha256:" + "0" * 64
    lock = tmp_path / "platform.lock.yaml"
    lock.write_text(yaml.safe_dump(catalog))
    assert any(DRIFT in m for m in _messages(catalog=lock))


def test_a_chart_with_values_unknown_during_preview_is_undecidable_not_passed() -> None:
    """The provider registers none of a chart's objects while an input is unknown, so nothing else
    would judge its pods: the rule must say it could not decide."""
    unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
    view = ResourceView.of(
        "kubernetes:helm.sh/v4:Chart",
        "vault",
        "urn:pulumi:test::somaagenthub::kubernetes:helm.sh/v4:Chart::vault",
        {"chart": "./charts/vault", "version": "0.31.0", "namespace": "vault", "values": {"server": {"image": unknown}}},
    )
    [outcome] = check_resource(RULE, view, rule_config(RULE, {"catalogPath": str(FIXTURE_CATALOG)}))
    assert outcome.unresolved is not None and outcome.unresolved.path == "values"
