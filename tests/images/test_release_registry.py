"""Promotion through a real registry: push, read the registry's digest, sign, attest, verify, pin.

Debian's ``docker-registry`` runs on 127.0.0.1; ``skopeo`` (Debian 12) pushes, ``cosign`` (Debian 13's
package, `make image-tools`) signs with generated keys. The image is a tiny one-layer OCI layout written
here (the full mmdebstrap build is `make images-test`, tests/images/test_image_build.py), so this runs
in `make test`. Verification must refuse an unsigned image, another key's signature and a tampered manifest.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import subprocess
import tarfile
from pathlib import Path

import pytest

from components import catalog
from tools.images import release
from tools.images.release import ReleaseError, Signing

from .conftest import _tool, keys

REPO = Path(__file__).resolve().parents[2]
HEAD = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()


pytestmark = pytest.mark.skipif(
    any(_tool(t) is None for t in ("cosign", "skopeo", "docker-registry")),
    reason="needs cosign, skopeo and docker-registry: `make image-tools` (tools/fetch_image_tools.sh)",
)


def _blob(layout: Path, data: bytes) -> dict:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def tiny_layout(folder: Path, tag: str, text: str) -> str:
    """A one-layer OCI image layout (a text file); returns its manifest digest."""
    (folder / "blobs" / "sha256").mkdir(parents=True)
    (folder / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        body = text.encode()
        info = tarfile.TarInfo("hello.txt")
        info.size = len(body)
        tar.addfile(info, io.BytesIO(body))
    layer = _blob(folder, gzip.compress(raw.getvalue(), mtime=0))
    config = _blob(folder, json.dumps({"architecture": "amd64", "os": "linux", "config": {"User": "10001:10001"},
                                       "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()]}}).encode())
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
                           "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **layer}]}).encode()
    entry = _blob(folder, manifest)
    (folder / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", **entry,
         "annotations": {"org.opencontainers.image.ref.name": tag}}]}))
    return entry["digest"]


def built_record(out: Path, app: str, text: str) -> dict:
    """What tools/images/build.py leaves in build/images/<app>/build.json, for the tiny image."""
    work = out / app
    digest = tiny_layout(work / "oci", "0.1.0", text)
    sbom = work / "sbom.cdx.json"
    sbom.write_text(json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1,
                                "metadata": {"component": {"type": "container", "name": app, "version": "0.1.0"}},
                                "components": [{"type": "library", "name": "uvicorn", "version": "0.54.0",
                                                "purl": "pkg:pypi/uvicorn@0.54.0"}]}, indent=2))
    record = {"app": app, "version": "0.1.0", "digest": digest, "layout": str(work / "oci"), "sbom": str(sbom),
              "sbom_digest": "sha256:" + hashlib.sha256(sbom.read_bytes()).hexdigest(), "source_date_epoch": 1795960487,
              "git_commit": HEAD, "compressed_size": 0, "rootfs_size": 0, "seconds": 0}
    (work / "build.json").write_text(json.dumps(record))
    return record


def lock_file(tmp_path: Path) -> Path:
    lock = tmp_path / "platform.lock.yaml"
    lock.write_text("charts: {}\nimages: {}\n\n# first-party images, written by the release pipeline\napps: {}\n")
    return lock


def run_release(out: Path, registry: str, key: str, public: str, lock: Path) -> int:
    args = argparse.Namespace(out=str(out), registry=f"{registry}/somaagenthub", key=key, public_key=public, identity=None,
                              issuer=None, insecure_registry=True, lock=str(lock))
    return release.main(args)


def test_release_pushes_signs_attests_verifies_and_pins_the_registry_digest(registry, tmp_path, capsys):
    host, _ = registry
    record = built_record(tmp_path / "out", "hello", "hello\n")
    key, public = keys(tmp_path / "platform")
    lock = lock_file(tmp_path)
    assert run_release(tmp_path / "out", host, key, public, lock) == 0, capsys.readouterr().err

    pinned = catalog.load(lock).apps["hello"]
    assert pinned.digest == record["digest"]
    assert release.registry_digest(f"{host}/somaagenthub/hello:0.1.0", insecure=True) == record["digest"]
    assert catalog.load(lock).app_image("hello").reference == f"{host}/somaagenthub/hello:0.1.0@{record['digest']}"
    assert pinned.signer.kind == "platform"
    assert pinned.sbom.digest == record["sbom_digest"]
    assert pinned.sbom.attestation == f"{host}/somaagenthub/hello:{record['digest'].replace(':', '-')}.att"
    assert "# first-party images, written by the release pipeline" in lock.read_text()
    # the signature and the SBOM attestation verify with the platform's public key, as promotion requires
    signing = Signing(key=key, public_key=public, insecure_registry=True)
    release.verify(f"{host}/somaagenthub/hello@{record['digest']}", signing, Path(record["sbom"]))


def test_verification_refuses_unsigned_other_key_and_tampered_manifests(registry, tmp_path, capsys):
    host, data = registry
    record = built_record(tmp_path / "out", "hello", "hello\n")
    key, public = keys(tmp_path / "platform")
    _, other_public = keys(tmp_path / "other")
    assert run_release(tmp_path / "out", host, key, public, lock_file(tmp_path)) == 0, capsys.readouterr().err
    signed = f"{host}/somaagenthub/hello@{record['digest']}"
    platform = Signing(key=key, public_key=public, insecure_registry=True)
    release.verify(signed, platform)

    # an unsigned image in the same registry
    unsigned_digest = tiny_layout(tmp_path / "unsigned", "0.1.0", "never signed\n")
    release.push(tmp_path / "unsigned", "0.1.0", f"{host}/somaagenthub/unsigned:0.1.0", insecure=True)
    with pytest.raises(ReleaseError, match="verify signature failed"):
        release.verify(f"{host}/somaagenthub/unsigned@{unsigned_digest}", platform)

    # the signed image, checked against another key
    with pytest.raises(ReleaseError, match="no matching signatures"):
        release.verify(signed, Signing(key=key, public_key=other_public, insecure_registry=True))

    # a different manifest pushed over the signed tag: the tag now resolves to an unsigned digest
    tampered = tiny_layout(tmp_path / "tampered", "0.1.0", "hello, changed\n")
    release.push(tmp_path / "tampered", "0.1.0", f"{host}/somaagenthub/hello:0.1.0", insecure=True)
    assert tampered != record["digest"]
    with pytest.raises(ReleaseError, match="verify signature failed"):
        release.verify(f"{host}/somaagenthub/hello:0.1.0", platform)

    # the signed manifest's bytes changed in the registry's storage: the digest no longer matches
    stored = data / "docker/registry/v2/blobs/sha256" / record["digest"][7:9] / record["digest"][7:] / "data"
    manifest = json.loads(stored.read_bytes())
    manifest["annotations"] = {"tampered": "yes"}
    stored.write_bytes(json.dumps(manifest).encode())
    with pytest.raises(ReleaseError, match="not the signed digest"):
        release.verify(signed, platform)


def test_an_sbom_other_than_the_attested_one_is_refused(registry, tmp_path, capsys):
    host, _ = registry
    record = built_record(tmp_path / "out", "hello", "hello\n")
    key, public = keys(tmp_path / "platform")
    assert run_release(tmp_path / "out", host, key, public, lock_file(tmp_path)) == 0, capsys.readouterr().err
    other = tmp_path / "other.cdx.json"
    other.write_text(json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1, "components": []}))
    with pytest.raises(ReleaseError, match="no verified CycloneDX attestation carries the SBOM"):
        release.verify(f"{host}/somaagenthub/hello@{record['digest']}", Signing(key=key, public_key=public, insecure_registry=True), other)


def test_nothing_is_pinned_when_the_registry_digest_differs_from_the_build(registry, tmp_path, capsys):
    host, _ = registry
    record = built_record(tmp_path / "out", "hello", "hello\n")
    record["digest"] = "sha256:" + hashlib.sha256(b"another manifest").hexdigest()
    (tmp_path / "out" / "hello" / "build.json").write_text(json.dumps(record))
    key, public = keys(tmp_path / "platform")
    lock = lock_file(tmp_path)
    before = lock.read_text()
    assert run_release(tmp_path / "out", host, key, public, lock) == 1
    assert "the registry serves" in capsys.readouterr().err
    assert lock.read_text() == before


def test_a_build_of_uncommitted_changes_is_not_promoted(registry, tmp_path, capsys):
    host, _ = registry
    record = built_record(tmp_path / "out", "hello", "hello\n")
    record["git_commit"] += "+uncommitted-changes"
    (tmp_path / "out" / "hello" / "build.json").write_text(json.dumps(record))
    key, public = keys(tmp_path / "platform")
    assert run_release(tmp_path / "out", host, key, public, lock_file(tmp_path)) == 1
    assert "only a build of a committed tree is promoted" in capsys.readouterr().err


def test_signing_options_must_name_one_way_to_sign():
    with pytest.raises(ReleaseError, match="either --key"):
        Signing()
    with pytest.raises(ReleaseError, match="needs --public-key"):
        Signing(key="cosign.key")
    with pytest.raises(ReleaseError, match="needs --issuer"):
        Signing(identity="https://github.com/org/repo/.github/workflows/release.yml@refs/heads/main")
    keyless = Signing(identity="https://github.com/org/repo/.github/workflows/release.yml@refs/heads/main",
                      issuer="https://token.actions.githubusercontent.com")
    assert keyless.signer()["kind"] == "keyless" and "--certificate-identity" in keyless.verify_args
