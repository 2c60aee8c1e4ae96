"""The refresh end to end against a real docker-registry on 127.0.0.1, with images pushed and signed here.

The catalog signer of these images is a key pair made here, standing in for an upstream signer: keyless
verification needs Fulcio, Rekor and an OIDC token, none reachable offline, so a keyless identity is checked
only for the cosign arguments it produces (the same ``release.verify`` code path runs either way).
"""
from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from components import catalog
from tests.images.conftest import _tool, keys
from tests.local_registry import local_registry
from tests.local_servers import free_port
from tests.mirror.oci_fixtures import write_image
from tools.images.release import Trust
from tools.ops import lockfile, refresh
from tools.ops.refresh import PROPOSED, REFUSED, RefreshItem
from tools.ops.registry import Registry, RegistryError

pytestmark = pytest.mark.skipif(
    any(_tool(t) is None for t in ("cosign", "skopeo", "docker-registry")),
    reason="needs cosign, skopeo and docker-registry: `make image-tools` (tools/fetch_image_tools.sh)",
)

TODAY = dt.date(2026, 11, 29)


def push(world, repository: str, tag: str, content: bytes, signer: str | None = None) -> str:
    layout = world["tmp"] / "layouts" / f"{repository.replace('/', '_')}-{tag}-{len(content)}"
    digest = write_image(layout, [{"etc/release": content}])
    subprocess.run([_tool("skopeo"), "copy", "--quiet", "--preserve-digests", "--dest-tls-verify=false",
                    f"oci:{layout}", f"docker://{world['host']}/{repository}:{tag}"], check=True, capture_output=True)
    if signer:
        done = subprocess.run([_tool("cosign"), "sign", "--yes", "--key", signer, "--tlog-upload=false",
                               "--allow-insecure-registry", f"{world['host']}/{repository}@{digest}"],
                              capture_output=True, text=True, env={**os.environ, "COSIGN_PASSWORD": ""})
        assert done.returncode == 0, done.stderr
    return digest


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """One registry; the catalog signer's key and a stranger's; the pinned images and what was released since."""
    tmp = tmp_path_factory.mktemp("refresh")
    (tmp / "registry").mkdir()
    with local_registry(_tool("docker-registry"), tmp / "registry") as (host, _):
        w = {"tmp": tmp, "host": host, "signer": keys(tmp / "signer"), "stranger": keys(tmp / "stranger")}
        private, stranger = w["signer"][0], w["stranger"][0]
        w["pins"] = {
            # moved: the pinned tag was pushed again (a rebuild) and signed
            "moved": ("vendor/moved", "1.0.0", push(w, "vendor/moved", "1.0.0", b"first build", private)),
            # patch: a patch release and a minor release since; the policy allows only the patch
            "patch": ("vendor/patch", "v2.0.0", push(w, "vendor/patch", "v2.0.0", b"2.0.0", private)),
            "unsigned": ("vendor/unsigned", "3.0.0", push(w, "vendor/unsigned", "3.0.0", b"3.0.0", private)),
            "stranger": ("vendor/stranger", "4.0.0", push(w, "vendor/stranger", "4.0.0", b"4.0.0", private)),
            "alpine": ("vendor/alpine", "5.1.0-alpine", push(w, "vendor/alpine", "5.1.0-alpine", b"5.1.0", private)),
        }
        w["moved_to"] = push(w, "vendor/moved", "1.0.0", b"second build", private)
        w["patch_to"] = push(w, "vendor/patch", "v2.0.1", b"2.0.1", private)
        push(w, "vendor/patch", "v2.1.0", b"2.1.0", private)
        push(w, "vendor/patch", "v2.0.2-rc.1", b"2.0.2-rc.1", private)
        push(w, "vendor/unsigned", "3.0.1", b"3.0.1")
        push(w, "vendor/stranger", "4.0.1", b"4.0.1", stranger)
        w["alpine_to"] = push(w, "vendor/alpine", "5.1.1-alpine", b"5.1.1", private)
        push(w, "vendor/alpine", "5.1.2", b"5.1.2 without the variant", private)
        push(w, "vendor/alpine", "5.1.3-bookworm", b"5.1.3 bookworm", private)
        w["lock"] = write_lock(w)
        w["outcomes"] = {o.key: o for o in refresh.refresh_images(items(w), TODAY, frozenset({host}), log=lambda _: None)}
        yield w


def items(world) -> list[RefreshItem]:
    trust = Trust(public_key=world["signer"][1])
    return [RefreshItem(key=key, registry=world["host"], repository=repo, tag=tag, digest=digest, update="patch", trust=trust)
            for key, (repo, tag, digest) in sorted(world["pins"].items())]


def write_lock(world) -> Path:
    lines = ["# a test lock", "charts: {}", "images:"]
    for key, (repo, tag, digest) in sorted(world["pins"].items()):
        lines += [f"  {key}:", f"    registry: {world['host']}", f"    repository: {repo}", "    # pinned by the test",
                  f"    tag: {tag}", f"    digest: {digest}", "    source: 'https://example.test/release-notes'",
                  "    signer:", "      kind: platform"]
    path = world["tmp"] / "platform.lock.yaml"
    path.write_text("\n".join(lines) + "\napps: {}\n")
    return path


def test_a_moved_tag_is_proposed_and_marked_as_moved(world):
    outcome = world["outcomes"]["moved"]
    assert outcome.state == PROPOSED
    assert (outcome.proposal.tag, outcome.proposal.digest, outcome.proposal.moved) == ("1.0.0", world["moved_to"], True)
    assert "tag 1.0.0 moved from" in outcome.source and outcome.source.startswith(f"registry {world['host']} 2026-11-29")


def test_a_new_patch_release_is_proposed_but_not_a_minor_one_under_a_patch_policy(world):
    outcome = world["outcomes"]["patch"]
    assert (outcome.state, outcome.proposal.tag, outcome.proposal.digest) == (PROPOSED, "v2.0.1", world["patch_to"])
    assert "signature verified against key" in outcome.verification
    assert any("beyond update policy 'patch'" in n and "v2.1.0" in n for n in outcome.notes)
    assert not any("rc.1" in n for n in outcome.notes)


def test_the_variant_of_the_tag_is_kept(world):
    outcome = world["outcomes"]["alpine"]
    assert (outcome.proposal.tag, outcome.proposal.digest) == ("5.1.1-alpine", world["alpine_to"])


@pytest.mark.parametrize("key, why", [("unsigned", "no signatures found"), ("stranger", "")])
def test_an_unsigned_or_wrongly_signed_release_is_refused_with_the_reason(world, key, why):
    outcome = world["outcomes"][key]
    assert outcome.state == REFUSED and outcome.proposal is None
    (refusal,) = [n for n in outcome.notes if "refused" in n]
    assert refusal.startswith(f"{'3.0.1' if key == 'unsigned' else '4.0.1'}@sha256:")
    assert "signature does not verify against key" in refusal and why in refusal


def test_the_proposal_is_a_lock_patch_and_the_lock_changes_only_with_write(world, tmp_path):
    lock = tmp_path / "platform.lock.yaml"
    shutil.copy(world["lock"], lock)
    before = lock.read_text()
    patch = lockfile.write_proposal(lock, list(world["outcomes"].values()), tmp_path / "out", TODAY, write=False)
    assert lock.read_text() == before
    proposed = catalog.load(tmp_path / "out" / "platform.lock.yaml")
    assert (proposed.images["patch"].tag, proposed.images["patch"].digest) == ("v2.0.1", world["patch_to"])
    assert proposed.images["moved"].digest == world["moved_to"]
    assert proposed.images["unsigned"].digest == world["pins"]["unsigned"][2]
    assert "registry 127.0.0.1" in proposed.images["patch"].source and "verified against key" in proposed.images["patch"].source
    assert "+    tag: v2.0.1" in patch.read_text() and "# pinned by the test" in patch.read_text()
    lockfile.write_proposal(lock, list(world["outcomes"].values()), tmp_path / "out", TODAY, write=True)
    assert catalog.load(lock).images["alpine"].tag == "5.1.1-alpine"


def test_the_command_reads_the_lock_and_leaves_it_alone(world, tmp_path, capsys):
    lock = tmp_path / "platform.lock.yaml"
    shutil.copy(world["lock"], lock)
    code = refresh.main(["images", "--lock", str(lock), "--only", "moved", "--out", str(tmp_path / "out"),
                         "--insecure-registry", world["host"]])
    printed = capsys.readouterr().out
    # the test lock's signer is platform: the upstream publishes none, so nothing is verified upstream
    assert code == 0 and "1 proposed" in printed and "not verifiable upstream" in (tmp_path / "out" / "platform.lock.yaml").read_text()
    assert lock.read_text() == world["lock"].read_text()


def test_the_registry_client_reads_tags_and_digests(world):
    registry = Registry(world["host"], insecure=True)
    assert {"v2.0.0", "v2.0.1", "v2.1.0"} <= set(registry.tags("vendor/patch"))
    assert registry.digest("vendor/patch", "v2.0.1") == world["patch_to"]


@pytest.mark.skipif(os.environ.get("SOMA_NETWORK_TESTS") != "1",
                    reason="keyless verification needs Fulcio's roots, Rekor and the upstream registry (ghcr.io), none "
                           "reachable offline; SOMA_NETWORK_TESTS=1 runs it where they are")
def test_a_keyless_signer_is_verified_against_its_documented_identity():
    (item,) = refresh.items_from_catalog(catalog.load(), frozenset({"external-secrets"}))
    assert item.trust.identity.endswith("release.yml@refs/heads/main")
    outcome = refresh.check_image(item, Registry(item.registry), TODAY)
    assert outcome.state != refresh.FAILED, outcome.notes
    if outcome.proposal:
        assert f"signature verified against identity {item.trust.identity}" in outcome.verification


def test_an_entry_that_cannot_be_rewritten_in_place_stops_the_proposal(world):
    lines = world["lock"].read_text().splitlines()
    start = lines.index("  patch:")
    source = next(i for i in range(start, len(lines)) if lines[i].startswith("    source:"))
    lines[source:source + 1] = ["    source: 'https://example.test/release-notes,", "      continued on a second line'"]
    with pytest.raises(lockfile.LockEditError, match="images.patch: the rewritten lock does not parse"):
        lockfile.propose_lock("\n".join(lines) + "\n", [world["outcomes"]["patch"]], TODAY)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command for the registry's certificate")
def test_the_registry_is_asked_over_https_by_default(tmp_path, monkeypatch):
    """The client speaks HTTPS unless told otherwise: a TLS docker-registry with a certificate for 127.0.0.1."""
    folder = tmp_path / "tls-registry"
    folder.mkdir()
    cert, key = folder / "registry.crt", folder / "registry.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    port = free_port()
    (folder / "registry.yml").write_text(json.dumps({
        "version": 0.1, "storage": {"filesystem": {"rootdirectory": str(folder / "data")}}, "log": {"level": "error"},
        "http": {"addr": f"127.0.0.1:{port}", "tls": {"certificate": str(cert), "key": str(key)}}}))
    proc = subprocess.Popen([_tool("docker-registry"), "serve", str(folder / "registry.yml")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    try:
        registry = Registry(f"127.0.0.1:{port}")
        assert registry.base == f"https://127.0.0.1:{port}"
        for _ in range(100):
            try:
                assert registry.tags("vendor/none") == []
                break
            except RegistryError as error:
                if "404" in str(error):
                    break
                time.sleep(0.05)
        with pytest.raises(RegistryError, match="404"):
            registry.digest("vendor/none", "1.0.0")
        monkeypatch.delenv("SSL_CERT_FILE")
        with pytest.raises(RegistryError, match="CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            Registry(f"127.0.0.1:{port}").digest("vendor/none", "1.0.0")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
