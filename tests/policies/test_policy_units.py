"""The small pieces the rules stand on: image references, credential keys, catalog and config files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from policy_support import FIXTURE_CATALOG

from policies.catalog import REPO_ROOT, CatalogError, content_digest, load_catalog
from policies.config import PolicyConfigError, resolve_settings
from policies.images import ImageRef, looks_like_image
from policies.model import ResourceView, Unknown, dig, plain
from policies.rules import RULES
from policies.rules.no_plaintext_secrets import is_sensitive_key


@pytest.mark.parametrize(
    ("reference", "name", "tag", "digest"),
    [
        ("nginx", "docker.io/library/nginx", "", ""),
        ("hashicorp/vault:1.20.4", "docker.io/hashicorp/vault", "1.20.4", ""),
        ("localhost:5000/app@sha256:ab", "localhost:5000/app", "", "sha256:ab"),
        (
            "registry.soma.internal/mirror/hashicorp/vault:1.20.4@sha256:ab",
            "registry.soma.internal/mirror/hashicorp/vault",
            "1.20.4",
            "sha256:ab",
        ),
        ("host:443/team/app", "host:443/team/app", "", ""),
    ],
)
def test_image_reference_parsing(reference: str, name: str, tag: str, digest: str) -> None:
    assert ImageRef.parse(reference) == ImageRef(name, tag, digest)


@pytest.mark.parametrize("value", ["nginx:1.27", "ghcr.io/org/app@sha256:abcd", "docker.io/org/app"])
def test_looks_like_image(value: str) -> None:
    assert looks_like_image(value)


@pytest.mark.parametrize("value", ["", "IfNotPresent", "not an image", "[secret]", "true"])
def test_does_not_look_like_image(value: str) -> None:
    assert not looks_like_image(value)


@pytest.mark.parametrize(
    "key", ["DB_PASSWORD", "apiKey", "client-secret", "GITHUB_TOKEN", "private_key", "openaiApiKey"]
)
def test_sensitive_keys(key: str) -> None:
    assert is_sensitive_key(key)


@pytest.mark.parametrize(
    "key", ["LOG_LEVEL", "VAULT_TOKEN_FILE", "DB_SECRET_NAME", "keycloakUrl", "AWS_ACCESS_KEY_ID", "monkey", "SECRET_TTL"]
)
def test_reference_or_harmless_keys(key: str) -> None:
    assert not is_sensitive_key(key)


def test_catalog_loads_and_indexes_digests() -> None:
    catalog = load_catalog(str(FIXTURE_CATALOG))
    assert {image.key for image in catalog.images} >= {"agent-api", "vault"}
    vendored = catalog.charts_by_path["charts/vault"]
    assert (vendored.key, vendored.version) == ("vault", "0.31.0")
    assert vendored.digest == content_digest(REPO_ROOT / "charts" / "vault")
    assert "charts/redis" not in catalog.charts_by_path  # a catalog chart without a vendored folder
    vault = catalog.images_by_digest["sha256:e6f0a1fbb43c89196dcfcbef85908f19ab4c5f7cc4f4c452284697757683d7ef"][0]
    assert vault.signer is not None and vault.signer.is_complete


def test_catalog_errors(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="cannot be read"):
        load_catalog(str(tmp_path / "missing.yaml"))
    broken = tmp_path / "broken.yaml"
    broken.write_text("images: [1, 2]\n")
    with pytest.raises(CatalogError, match="'images' must map keys to entries"):
        load_catalog(str(broken))


def test_catalog_reload_when_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "platform.lock.yaml"
    path.write_text("images: {}\ncharts: {}\n")
    assert load_catalog(str(path)).charts == ()
    path.write_text("charts: {a: {repository: 'https://x.test', chart: a, version: 1.0.0}}\n")
    import os

    os.utime(path, ns=(1, 10**18))
    assert [chart.chart for chart in load_catalog(str(path)).charts] == ["a"]


def test_config_precedence_follows_the_cli() -> None:
    settings = resolve_settings(
        {"all": "advisory", "non-root": "mandatory", "digest-pinned-images": {"enforcementLevel": "disabled"}}, RULES
    )
    assert settings["non-root"].level == "mandatory"
    assert settings["digest-pinned-images"].level == "disabled"
    assert settings["resource-limits"].level == "advisory"
    assert resolve_settings({}, RULES)["resource-limits"].level == "mandatory"
    assert settings["non-root"].config["waivers"] == "allow-list"


def test_config_rejects_non_object_block() -> None:
    with pytest.raises(PolicyConfigError, match="expected an enforcement level or an object"):
        resolve_settings({"non-root": ["mandatory"]}, RULES)


def test_plain_marks_unknowns_and_unwraps_secrets() -> None:
    value = plain(
        {
            "a": ["04da6b54-80e4-46f7-96ec-b56ff0331ba9"],
            "s": {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270", "value": "x"},
        }
    )
    assert value == {"a": [Unknown("04da6b54-80e4-46f7-96ec-b56ff0331ba9")], "s": "x"}
    assert isinstance(dig(value, "a", 0, "b"), Unknown)
    assert dig(value, "missing", "b") is None


def test_resource_ids_for_waivers() -> None:
    deployment = ResourceView.of("kubernetes:apps/v1:Deployment", "api", "urn", {"metadata": {"name": "agent-api"}})
    namespace = ResourceView.of("kubernetes:core/v1:Namespace", "agents", "urn", {"kind": "Namespace"})
    assert deployment.resource_id == "Deployment/default/agent-api"
    assert namespace.resource_id == "Namespace/agents"


def test_every_rule_is_documented_for_reviewers() -> None:
    """Each rule explains itself in the pack and has its section in docs/policies.md; the doc describes
    no rule the pack does not have."""
    names = [rule.name for rule in RULES]
    assert len(set(names)) == len(names) == 14
    for rule in RULES:
        assert rule.description and rule.remediation and rule.severity
        assert (rule.check_resource is None) != (rule.check_stack is None)
    doc = (REPO_ROOT / "docs" / "policies.md").read_text(encoding="utf-8")
    rules_section = doc.split("\n## Rules\n", 1)[1].split("\n## ", 1)[0]
    headings = re.findall(r"^### (\S+) \(([^),]+)", rules_section, flags=re.MULTILINE)
    assert sorted(headings) == sorted((rule.name, str(rule.severity)) for rule in RULES)
