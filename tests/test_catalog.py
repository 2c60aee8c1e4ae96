"""The catalog: real pins only, written for the stack's registry, and the only place images are named."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from components import catalog
from components.catalog import CatalogError

ROOT = Path(__file__).resolve().parent.parent
REAL_DIGEST = "sha256:268bb80aa9c6d13d65fcfa05c0c268caca068952240a8087291a6ce0b66e3a10"
IMAGE_REFERENCE = re.compile(
    r"""["'](?:[a-z0-9.-]+\.[a-z]{2,}(?::\d+)?/)?[a-z0-9._-]+/[a-z0-9._/-]+(?::[\w.-]+)?@sha256:[0-9a-f]{8,}"""
    r"""|["'](?:docker\.io|quay\.io|ghcr\.io|gcr\.io|registry\.k8s\.io|public\.ecr\.aws)/[^"']+["']"""
    r"""|["'][a-z0-9._-]+/[a-z0-9._-]+:v?\d+\.\d+[\w.-]*["']"""
)


def entry(**overrides):
    base = {
        "registry": "docker.io", "repository": "hashicorp/vault", "tag": "1.20.4", "digest": REAL_DIGEST,
        "source": "github.com/example/repo/blob/0123abc/values.yaml", "signer": {"kind": "platform"},
    }
    base.update(overrides)
    return base


def vendored(key: str = "vault", **overrides):
    """A complete ``vendored`` block for the chart under ``key``, as tools/vendor_chart.py writes it."""
    base = {
        "path": f"charts/{key}",
        "upstream": {"git": "github.com/hashicorp/vault-helm", "tag": "v0.31.0",
                     "commit": "da81d965d3968a19a3da9286f0993da5cd0866de", "path": "."},
        "packaging": [],
        "dependencies": [],
        "digest": "sha256:7c91cb1962e03c6642b2b6462e4d63db28c7ac4f026e35eb287862f581d98393",
    }
    base.update(overrides)
    return base


def chart(key: str = "vault", **overrides):
    base = {"repository": "https://helm.releases.hashicorp.com", "chart": "vault", "version": "0.31.0",
            "source": "https://github.com/hashicorp/vault-helm/releases", "vendored": vendored(key)}
    base.update(overrides)
    return base


def problems(document) -> list[str]:
    with pytest.raises(CatalogError) as caught:
        catalog.parse(document)
    return caught.value.problems


def test_lock_file_loads_and_every_pin_names_its_source():
    loaded = catalog.load()
    assert len(loaded.images) >= 20 and len(loaded.charts) >= 10
    for image in loaded.images.values():
        assert image.source and image.signer.kind in {"keyless", "platform"}
        if image.signer.kind == "keyless":
            assert image.signer.issuer.startswith("https://") and image.signer.subject and image.signer.source


def test_reference_for_upstream_and_for_the_platform_registry_keep_the_digest():
    document = {"images": {"vault": entry()}, "charts": {}}
    upstream = catalog.parse(document).image("vault")
    mirrored = catalog.parse(document).for_registry("registry.soma.example.com/mirror").image("vault")
    assert upstream.reference == f"docker.io/hashicorp/vault:1.20.4@{REAL_DIGEST}"
    assert mirrored.reference == f"registry.soma.example.com/mirror/hashicorp/vault:1.20.4@{REAL_DIGEST}"
    assert mirrored.tag_at_digest == f"1.20.4@{REAL_DIGEST}"


@pytest.mark.parametrize(
    "bad, expected",
    [
        (entry(digest="sha256:abc"), "digest must be sha256:<64 lower-case hex>"),
        (entry(digest="1.20.4"), "digest must be sha256"),
        (entry(digest="sha256:" + "a" * 64), "looks synthetic"),
        (entry(digest="sha256:" + "0123456789abcdef" * 4), None),
        (entry(tag="latest"), "tag 'latest' floats"),
        (entry(source=""), "'source' is missing"),
        (entry(source="somewhere on the internet"), "source must name where the digest was read"),
        (entry(signer=None), "'signer' is missing"),
        (entry(signer={"kind": "keyless", "issuer": "https://token.actions.githubusercontent.com"}), "'subject' is missing"),
        (entry(signer={"kind": "trust-me"}), "kind must be 'keyless' or 'platform'"),
    ],
)
def test_bad_image_entries_are_refused(bad, expected):
    document = {"images": {"vault": bad}, "charts": {}}
    if expected is None:
        catalog.parse(document)
        return
    assert any(expected in p for p in problems(document)), problems(document)


@pytest.mark.parametrize(
    "bad, expected",
    [
        (chart(version="^0.31"), "version must be an exact release"),
        (chart(version="latest"), "version must be an exact release"),
        (chart(repository="http://insecure.example.com"), "https:// or oci://"),
        (chart(source=""), "'source' is missing"),
    ],
)
def test_bad_chart_entries_are_refused(bad, expected):
    (problem,) = problems({"images": {}, "charts": {"vault": bad}})
    assert problem.startswith("charts.vault") and expected in problem


def test_a_complete_chart_entry_is_accepted_with_its_vendored_folder():
    pinned = catalog.parse({"images": {}, "charts": {"vault": chart()}}).chart("vault")
    assert (pinned.path, pinned.version) == ("charts/vault", "0.31.0")
    assert pinned.folder == ROOT / "charts" / "vault"


def upstream(**overrides):
    return {**vendored()["upstream"], **overrides}


@pytest.mark.parametrize(
    "block, expected",
    [
        (None, "charts.vault.vendored is missing"),
        (vendored(path="charts/consul"), "charts.vault.vendored.path must be charts/vault, got 'charts/consul'"),
        (vendored(path="../vault"), "charts.vault.vendored.path must be charts/vault"),
        (vendored(digest="sha256:abc"), "charts.vault.vendored.digest must be sha256:<64 hex>"),
        (vendored(upstream=upstream(commit="da81d96")), "charts.vault.vendored.upstream.commit must be a full 40-hex commit, got 'da81d96'"),
        (vendored(upstream=upstream(commit="v0.31.0")), "charts.vault.vendored.upstream.commit must be a full 40-hex commit"),
        (vendored(upstream=upstream(path="")), "charts.vault.vendored.upstream must name git, tag, commit and path"),
        (vendored(packaging=None), "charts.vault.vendored: 'packaging' and 'dependencies' must be lists"),
    ],
)
def test_a_chart_that_is_not_properly_vendored_is_refused_naming_its_key(block, expected):
    entry = chart()
    if block is None:
        del entry["vendored"]
    else:
        entry["vendored"] = block
    (problem,) = problems({"images": {}, "charts": {"vault": entry}})
    assert problem.startswith(expected), problem


def test_the_same_image_twice_is_refused():
    found = problems({"images": {"vault": entry(), "vault-copy": entry()}, "charts": {}})
    assert "images.vault-copy: same repository and digest as images.vault" in found


def test_a_key_written_twice_in_the_file_is_refused():
    text = "images:\n  vault: {}\n  vault: {}\ncharts: {}\n"
    with pytest.raises(CatalogError, match="appear more than once"):
        catalog.read_document(text)


def test_every_problem_is_listed():
    found = problems({"images": {"a": entry(tag="latest", digest="x"), "b": entry(source="")}, "charts": {"c": chart("c", version="1")}})
    assert found == [
        "images.a: tag 'latest' floats; pin a release tag",
        "images.a: digest must be sha256:<64 lower-case hex>, got 'x'",
        "images.b: 'source' is missing or empty",
        "charts.c: version must be an exact release such as 1.2.3, got '1'",
    ]


def test_unknown_keys_fail_with_a_remedy():
    with pytest.raises(KeyError, match="add it with its digest, source and signer"):
        catalog.load().image("no-such-image")


def scan_for_image_references(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*.py")):
        if path.name == "catalog.py" and path.parent == root:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if IMAGE_REFERENCE.search(line):
                found.append(f"{path.relative_to(root.parent)}:{number}: {line.strip()}")
    return found


def test_no_module_other_than_the_catalog_names_an_image():
    assert scan_for_image_references(ROOT / "components") == []


def test_the_image_scan_catches_each_way_of_naming_an_image(tmp_path):
    package = tmp_path / "components"
    package.mkdir()
    (package / "sneaky.py").write_text(
        'A = "docker.io/library/nginx"\n'
        f'B = "hashicorp/vault@{REAL_DIGEST}"\n'
        'C = "grafana/grafana:12.1.0"\n'
        'D = "soma-data"  # a namespace, not an image\n'
    )
    assert len(scan_for_image_references(package)) == 3


@pytest.mark.parametrize("waivers, expected", [
    ([{"id": "CVE-2019-18224", "expires": "2026-12-31"}], "images.vault.waivers[0] (CVE-2019-18224): needs a 'reason'"),
    ([{"id": "CVE-2019-18224", "reason": "unused"}], "images.vault.waivers[0] (CVE-2019-18224): needs an 'expires' date"),
    ([{"reason": "unused", "expires": "2026-12-31"}], "images.vault.waivers[0]: needs 'id'"),
    ({"id": "CVE-2019-18224"}, "images.vault.waivers: must be a list"),
])
def test_a_cve_waiver_in_the_lock_needs_a_reason_and_an_expiry(waivers, expected):
    assert any(p.startswith(expected) for p in problems({"images": {"vault": entry(waivers=waivers)}, "charts": {}}))


def test_a_cve_waiver_travels_with_the_image_it_was_granted_for():
    waiver = {"id": "CVE-2019-18224", "package": "libidn2-0", "reason": "IDNA conversion unused", "expires": "2026-12-31"}
    image = catalog.parse({"images": {"vault": entry(waivers=[waiver])}, "charts": {}}).images["vault"]
    (parsed,) = image.waivers
    assert (parsed.vulnerability, parsed.package, parsed.expires.isoformat()) == ("CVE-2019-18224", "libidn2-0", "2026-12-31")
    assert parsed.covers("CVE-2019-18224", "libidn2-0") and not parsed.covers("CVE-2019-18224", "libidn2")
