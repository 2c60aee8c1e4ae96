"""The SBOM inventory covers every catalog image, and `find` answers from the SBOMs it points to.

End to end against a docker-registry on 127.0.0.1: images are pushed as the mirror and the release pipeline
leave them (digest, platform signature, CycloneDX attestation generated from the image's dpkg database),
``fetch`` verifies and caches the attestations, and ``find`` names the images holding a package version.
"""
from __future__ import annotations

import json
import os
import subprocess

import pytest

from components import catalog
from tests.images.conftest import _tool, keys
from tests.local_registry import local_registry
from tests.mirror.oci_fixtures import write_layout
from tools.images import release
from tools.images.release import Signing, Trust
from tools.mirror import image_sbom
from tools.mirror.report import FAILED, SIGNED, Entry, Report
from tools.ops import sbom

OS_RELEASE = b'ID=debian\nVERSION_ID="12"\n'


def status(*packages: tuple[str, str]) -> bytes:
    return "".join(f"Package: {name}\nStatus: install ok installed\nArchitecture: amd64\nVersion: {version}\n\n"
                   for name, version in packages).encode()


def test_every_catalog_image_and_app_has_an_inventory_entry():
    cat = catalog.load()
    entries = sbom.inventory(cat, "registry.soma.example.com/mirror", report=None)
    assert {(e.section, e.key) for e in entries} == {("images", k) for k in cat.images} | {("apps", k) for k in cat.apps}
    for entry in entries:
        assert entry.ours_fetch.startswith("cosign verify-attestation --type cyclonedx")
        assert entry.upstream.kind in ("none published", "cosign-attestation", "buildkit-attestation", "release-asset", "first-party")
        assert entry.upstream.source


def test_upstream_sbom_research_names_images_the_catalog_pins_and_cites_a_page():
    cat = catalog.load()
    names = {f"{i.registry}/{i.repository}" for i in cat.images.values()}
    projects = sbom.upstream_projects()
    assert all(p["match"] in names for p in projects), "an upstream SBOM entry matches no catalog image: update it"
    assert all(("https://" in p["source"]) or ("github.com/" in p["source"]) for p in projects)
    eso = next(e for e in sbom.inventory(cat, "registry.example", None) if e.key == "external-secrets")
    assert eso.upstream.kind == "cosign-attestation" and "--type spdx" in eso.upstream.fetch
    assert f"ghcr.io/external-secrets/external-secrets@{cat.images['external-secrets'].digest}" in eso.upstream.fetch
    vault = next(e for e in sbom.inventory(cat, "registry.example", None) if e.key == "vault")
    assert vault.upstream.kind == "none published"


def test_an_image_not_yet_mirrored_has_no_sbom_of_ours_and_says_why():
    cat = catalog.load()
    report = Report(registry="registry.example/mirror", platform_key="sha256:x",
                    entries={"vault": Entry(key="vault", source="", target="registry.example/mirror/hashicorp/vault",
                                            digest=cat.images["vault"].digest, state=FAILED)})
    vault = next(e for e in sbom.inventory(cat, "registry.example/mirror", report) if e.key == "vault")
    assert vault.ours == "" and "mirror report: failed" in vault.ours_note


ESO_SPDX = {"Data": json.dumps({"spdxVersion": "SPDX-2.2", "packages": [
    {"name": "tzdata", "versionInfo": "2021a-1+deb11u8", "externalRefs": [
        {"referenceType": "purl", "referenceLocator": "pkg:deb/debian/tzdata@2021a-1+deb11u8?arch=all&distro=debian-11"}]}]})}


def test_spdx_packages_match_by_name_purl_and_version():
    (package,) = sbom.packages(ESO_SPDX)
    assert sbom.matches(package, "tzdata", "2021a-1+deb11u8")
    assert sbom.matches(package, "pkg:deb/debian/tzdata", None)
    assert not sbom.matches(package, "tzdata", "2021a-1+deb11u9")


pytestmark_registry = pytest.mark.skipif(
    any(_tool(t) is None for t in ("cosign", "skopeo", "docker-registry")),
    reason="needs cosign, skopeo and docker-registry: `make image-tools` (tools/fetch_image_tools.sh)",
)


def push_attested(world, repository: str, tag: str, packages: list[tuple[str, str]]) -> tuple[str, str]:
    """Push as the mirror leaves an image: by digest, platform-signed, its generated SBOM attested."""
    layout = world["tmp"] / "layouts" / repository.replace("/", "_")
    digest = write_layout(layout, {"linux/amd64": [{"etc/os-release": OS_RELEASE}, {"var/lib/dpkg/status": status(*packages)}]})
    subprocess.run([_tool("skopeo"), "copy", "--quiet", "--all", "--preserve-digests", "--dest-tls-verify=false",
                    f"oci:{layout}", f"docker://{world['host']}/{repository}:{tag}"], check=True, capture_output=True)
    document = image_sbom.image_sbom(layout, name=repository, version=tag, digest=digest)
    path = world["tmp"] / f"{repository.replace('/', '_')}.cdx.json"
    path.write_text(json.dumps(document))
    reference = f"{world['host']}/{repository}@{digest}"
    release.sign_and_attest(reference, path, world["signing"])
    return digest, path


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sbom")
    (tmp / "registry").mkdir()
    with local_registry(_tool("docker-registry"), tmp / "registry") as (host, _):
        private, public = keys(tmp / "platform-key")
        w = {"tmp": tmp, "host": host, "signing": Signing(key=private, public_key=public, insecure_registry=True)}
        mirror = f"{host}/mirror"
        old, _ = push_attested(w, "mirror/vendor/old-zlib", "1.0.0", [("zlib1g", "1:1.2.13.dfsg-1"), ("libc6", "2.36-9")])
        new, _ = push_attested(w, "mirror/vendor/new-zlib", "2.0.0", [("zlib1g", "1:1.3.dfsg-3"), ("libc6", "2.36-9")])
        app_digest, app_sbom = push_attested(w, "somaagenthub/identity", "0.1.0", [("libc6", "2.36-9+deb12u4")])
        pending = "sha256:" + "0123456789abcdef" * 4
        document = {
            "charts": {},
            "images": {key: {"registry": "docker.io", "repository": repo, "tag": tag, "digest": digest,
                             "source": "https://example.test/release", "signer": {"kind": "platform"}}
                       for key, repo, tag, digest in (("old-zlib", "vendor/old-zlib", "1.0.0", old),
                                                      ("new-zlib", "vendor/new-zlib", "2.0.0", new),
                                                      ("pending", "vendor/pending", "3.0.0", pending))},
            "apps": {"identity": {
                "registry": host, "repository": "somaagenthub/identity", "tag": "0.1.0", "digest": app_digest,
                "source": "built by tools/images (make images) from git commit 83e7c5c8885b5b4fed8645b7a4e723001ac7c486",
                "signer": {"kind": "platform"},
                "sbom": {"format": "CycloneDX JSON", "predicate_type": catalog.SBOM_PREDICATE,
                         "digest": "sha256:e8324a91128fbc78eac30e28a5f9c6f49d92af95998cdc1c8a43d1da2f795305",
                         "attestation": f"{host}/somaagenthub/identity:{app_digest.replace(':', '-')}.att"}}},
        }
        cat = catalog.parse(document)
        report = Report(registry=mirror, platform_key="sha256:test", entries={
            key: Entry(key=key, source=f"docker.io/vendor/{key}@{d}", target=f"{mirror}/vendor/{key}", digest=d, state=SIGNED,
                       sbom="generated from the image's package databases (tools/mirror/image_sbom.py)")
            for key, d in (("old-zlib", old), ("new-zlib", new))})
        w["entries"] = sbom.inventory(cat, mirror, report, key_hint=public)
        w["lines"] = []
        w["failures"] = sbom.fetch(w["entries"], cat, Trust(public_key=public, insecure_registry=True), tmp / "out" / "cache",
                                   log=w["lines"].append)
        builds = tmp / "builds" / "gateway"
        builds.mkdir(parents=True)
        (builds / "build.json").write_text(json.dumps({"app": "gateway", "version": "0.2.0", "digest": app_digest,
                                                       "sbom": str(app_sbom)}))
        w.update(cat=cat, old=old, new=new, app_digest=app_digest, mirror=mirror, private=private, public=public)
        yield w


@pytestmark_registry
def test_fetch_caches_every_attested_sbom_and_skips_the_unmirrored_image(world):
    assert world["failures"] == []
    cached = sorted(p.name for p in (world["tmp"] / "out" / "cache").glob("*.json"))
    assert cached == ["apps-identity.json", "images-new-zlib.json", "images-old-zlib.json"]
    # the attestation is where the inventory says cosign stored it (docker-registry 2.8: a sha256-<hex>.att tag)
    old = next(e for e in world["entries"] if e.key == "old-zlib")
    assert release.attestation_reference(old.ours, insecure=True) == old.attestation
    assert any(line.startswith("SKIPPED  pending:") and "not in the platform registry yet" in line for line in world["lines"])


@pytestmark_registry
def test_find_names_the_images_holding_a_package_version(world):
    cache, builds = world["tmp"] / "out" / "cache", world["tmp"] / "builds"
    hits, searched = sbom.find("zlib1g", "1:1.2.13.dfsg-1", cache, builds)
    assert searched == 4  # three attestations and one local first-party build
    assert [(h.key, h.image) for h in hits] == [("old-zlib", f"{world['mirror']}/vendor/old-zlib@{world['old']}")]
    hits, _ = sbom.find("zlib1g", None, cache, builds)
    assert sorted(h.key for h in hits) == ["new-zlib", "old-zlib"]
    hits, _ = sbom.find("libc6", "2.36-9+deb12u4", cache, builds)
    assert sorted(h.key for h in hits) == ["gateway", "identity"]  # the pinned app and the local build


@pytestmark_registry
def test_a_version_no_image_contains_answers_none(world, capsys):
    assert sbom.find("zlib1g", "1:1.3.1-1", world["tmp"] / "out" / "cache", world["tmp"] / "builds")[0] == []
    code = sbom.main(["find", "zlib1g", "--version", "1:1.3.1-1", "--out", str(world["tmp"] / "out"),
                      "--builds", str(world["tmp"] / "builds")])
    assert code == 1 and capsys.readouterr().out.startswith("none: no image contains zlib1g 1:1.3.1-1 (4 SBOMs searched")


@pytestmark_registry
def test_find_by_purl_answers_the_image_and_the_exact_package(world, capsys):
    code = sbom.main(["find", "pkg:deb/debian/zlib1g", "--version", "1:1.3.dfsg-3", "--out", str(world["tmp"] / "out"),
                      "--builds", str(world["tmp"] / "builds")])
    (line,) = capsys.readouterr().out.splitlines()
    assert code == 0 and line.startswith(f"new-zlib\t{world['mirror']}/vendor/new-zlib@{world['new']}\tzlib1g 1:1.3.dfsg-3\tpkg:deb/")


def test_fetch_drops_what_an_earlier_fetch_cached(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "images-removed.json").write_text(json.dumps({"key": "removed", "image": "x@sha256:1", "sboms": []}))
    assert sbom.fetch([], catalog.load(), Trust(public_key="unused.pub"), cache, log=lambda _: None) == []
    assert list(cache.iterdir()) == []


def spdx(name: str, version: str) -> dict:
    return {"spdxVersion": "SPDX-2.3", "packages": [{"name": name, "versionInfo": version, "externalRefs": [
        {"referenceType": "purl", "referenceLocator": f"pkg:golang/example.com/{name}@{version}"}]}]}


@pytestmark_registry
def test_upstream_sboms_are_read_from_buildkit_attestations_and_verified_cosign_spdx_attestations(world, tmp_path):
    """Upstream stand-ins: a BuildKit SBOM inside the pinned index, and SPDX attestations signed with a key
    (standing in for the catalog's keyless signer), one of them by a stranger."""
    host, stranger_private, _ = world["host"], *keys(tmp_path / "stranger")
    layout = tmp_path / "bk"
    buildkit = write_layout(layout, {"linux/amd64": [{"etc/os-release": OS_RELEASE}]}, attestations=True,
                            attested=("https://spdx.dev/Document", spdx("gatekeeper", "3.23.1")))
    subprocess.run([_tool("skopeo"), "copy", "--quiet", "--all", "--preserve-digests", "--dest-tls-verify=false",
                    f"oci:{layout}", f"docker://{host}/upstream/bk:1.0.0"], check=True, capture_output=True)
    signed = {}
    for repo, private in (("upstream/eso", world["private"]), ("upstream/forged", stranger_private)):
        folder = tmp_path / repo.replace("/", "_")
        digest = write_layout(folder, {"linux/amd64": [{"etc/" + repo.replace("/", "-"): b"x"}]})
        subprocess.run([_tool("skopeo"), "copy", "--quiet", "--all", "--preserve-digests", "--dest-tls-verify=false",
                        f"oci:{folder}", f"docker://{host}/{repo}:1.0.0"], check=True, capture_output=True)
        predicate = tmp_path / f"{repo.replace('/', '_')}.spdx.json"
        predicate.write_text(json.dumps(spdx("eso-controller", "2.9.0")))
        done = subprocess.run([_tool("cosign"), "attest", "--yes", "--type", "spdx", "--predicate", str(predicate), "--key", private,
                               "--tlog-upload=false", "--allow-insecure-registry", f"{host}/{repo}@{digest}"],
                              capture_output=True, text=True, env={**os.environ, "COSIGN_PASSWORD": ""})
        assert done.returncode == 0, done.stderr
        signed[repo] = digest
    cat = catalog.parse({"charts": {}, "apps": {}, "images": {
        key: {"registry": host, "repository": repo, "tag": "1.0.0", "digest": digest, "source": "https://example.test/r",
              "signer": {"kind": "platform"}}
        for key, repo, digest in (("bk", "upstream/bk", buildkit), ("eso", "upstream/eso", signed["upstream/eso"]),
                                  ("forged", "upstream/forged", signed["upstream/forged"]))}})
    projects = [{"match": f"{host}/upstream/bk", "kind": "buildkit-attestation", "source": "https://example.test/docs"},
                {"match": f"{host}/upstream/eso", "kind": "cosign-attestation", "source": "https://example.test/docs"},
                {"match": f"{host}/upstream/forged", "kind": "cosign-attestation", "source": "https://example.test/docs"}]
    entries = sbom.inventory(cat, "registry.example/mirror", None, projects=projects)
    lines: list[str] = []
    failures = sbom.fetch_upstream(entries, cat, tmp_path / "cache", frozenset({host}),
                                   trust_for=lambda image: Trust(public_key=world["public"]), log=lines.append)
    assert len(failures) == 1 and failures[0].startswith("forged:"), failures
    hits, searched = sbom.find("gatekeeper", "3.23.1", tmp_path / "cache", tmp_path / "no-builds")
    assert searched == 2 and [(h.key, h.image) for h in hits] == [("bk", f"{host}/upstream/bk@{buildkit} (upstream buildkit-attestation)")]
    hits, _ = sbom.find("pkg:golang/example.com/eso-controller", "2.9.0", tmp_path / "cache", tmp_path / "no-builds")
    assert [h.key for h in hits] == ["eso"]  # the forged attestation was never cached
