"""A promotion verifies every image's signature in the registry the stack pulls from, end to end.

A Debian ``docker-registry`` on 127.0.0.1 plays the platform registry; two small OCI images are pushed there
and one is signed with the platform key (cosign). The catalog names both, pulled from that registry, and
the stack's admission trusts the platform key; the promotion's verification is tools/images/release.py's
``verify`` (the registry's manifest hash, then ``cosign verify``).
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from components import catalog
from tests.images.conftest import _tool, keys
from tests.local_registry import local_registry
from tests.mirror.oci_fixtures import write_image
from tests.ops import promotion_fixtures as fx
from tools.ops import image_trust, promotion_log
from tools.ops import promote as promotion
from tools.ops.promote import PromotionError

pytestmark = pytest.mark.skipif(
    any(_tool(t) is None for t in ("cosign", "skopeo", "docker-registry")),
    reason="needs cosign, skopeo and docker-registry: `make image-tools` (tools/fetch_image_tools.sh)",
)


def _entry(repository: str, digest: str, signer: dict) -> dict:
    return {"registry": "ghcr.io", "repository": repository, "tag": "1.0.0", "digest": digest,
            "source": "https://example.test/releases (test fixture)", "signer": signer}


@pytest.fixture(scope="module")
def registry_world(tmp_path_factory):
    """The registry with ``soma/signed`` (signed with the platform key) and ``soma/unsigned``; the lock naming both."""
    tmp = tmp_path_factory.mktemp("promotion-registry")
    (tmp / "registry").mkdir()
    with local_registry(_tool("docker-registry"), tmp / "registry") as (address, _):
        platform, stranger = keys(tmp / "platform"), keys(tmp / "stranger")
        digests = {}
        for name in ("signed", "unsigned", "stranger"):
            layout = tmp / "layouts" / name
            digests[name] = write_image(layout, [{"etc/os-release": f"ID={name}\n".encode()}])
            subprocess.run([_tool("skopeo"), "copy", "--quiet", "--preserve-digests", "--dest-tls-verify=false",
                            f"oci:{layout}", f"docker://{address}/soma/{name}:1.0.0"], check=True, capture_output=True)
        env = {**os.environ, "COSIGN_PASSWORD": ""}
        for name, pair in (("signed", platform), ("stranger", stranger)):
            done = subprocess.run([_tool("cosign"), "sign", "--yes", "--key", pair[0], "--tlog-upload=false",
                                   "--allow-insecure-registry", f"{address}/soma/{name}@{digests[name]}"],
                                  capture_output=True, text=True, env=env)
            assert done.returncode == 0, done.stderr
        lock = catalog.parse({"charts": {}, "images": {
            name: _entry(f"soma/{name}", digests[name], {"kind": "platform"}) for name in digests}})
        yield {"address": address, "digests": digests, "lock": lock, "platform": platform, "tmp": tmp,
               "settings": fx.signatures(Path(platform[1]).read_text())}


def _refs(world, *names: str) -> set[tuple[str, str]]:
    return {(f"{world['address']}/soma/{n}", world["digests"][n]) for n in names}


def test_the_signed_image_verifies_and_the_unsigned_and_the_strangers_are_named(registry_world):
    lock = registry_world["lock"].for_registry(registry_world["address"])
    verified, problems = image_trust.check(_refs(registry_world, "signed", "unsigned", "stranger"), lock,
                                           registry_world["settings"], insecure_registry=True)
    assert [v.image for v in verified] == [f"{registry_world['address']}/soma/signed@{registry_world['digests']['signed']}"]
    assert verified[0].trusted == "the platform key (mesh.signatures.platformKey)"
    assert len(problems) == 2
    assert any("soma/unsigned@" in p and "(unsigned): signature against the platform key" in p for p in problems)
    assert any("soma/stranger@" in p and "does not verify" in p for p in problems)


def test_a_promotion_with_an_unsigned_image_stops_with_the_reason_and_one_with_signed_images_is_recorded(
        registry_world, tmp_path):
    log_pub = keys(tmp_path / "log")
    root = fx.repository(tmp_path / "repo", log_pub[1])
    address = registry_world["address"]
    tree = fx.FakeTree(lock_=registry_world["lock"], registry=address, signature_settings=registry_world["settings"],
                       images=[f"{address}/soma/{n}:1.0.0@{registry_world['digests'][n]}" for n in ("signed", "unsigned")])
    options = fx.options(root, log_pub[0], tree, verify=promotion.image_release.verify, insecure_registry=True)
    with pytest.raises(PromotionError, match=r"1 of 2 image\(s\) of staging do not verify[\s\S]*soma/unsigned@sha256:"
                                             r"[0-9a-f]{64} \(unsigned\): signature against the platform key"):
        promotion.promote("dev", "staging", options)
    assert promotion_log.read(root) == []
    signed_only = fx.options(root, log_pub[0], fx.FakeTree(**{**tree.__dict__, "images": tree.images[:1]}),
                             verify=promotion.image_release.verify, insecure_registry=True)
    record = promotion.promote("dev", "staging", signed_only).record
    assert record["signatures"] == {"images": 1, "trusted": ["the platform key (mesh.signatures.platformKey)"]}


def test_admission_by_signer_checks_a_keyless_image_against_its_documented_identity_and_platform_images_by_key(
        registry_world):
    """Keyless signing needs Fulcio and an OIDC token (not offline): what is checked is the trust handed to
    ``verify``, which turns into cosign's identity arguments as the mirror's upstream check does."""
    keyless = catalog.parse({"charts": {}, "images": {
        "vault": _entry("hashicorp/vault", registry_world["digests"]["signed"], {
            "kind": "keyless", "issuer": "https://token.actions.githubusercontent.com",
            "subject": "https://github.com/hashicorp/vault/.github/workflows/build.yml@refs/tags/v*",
            "source": "https://example.test/vault-signing (test fixture)"})}})
    image = keyless.images["vault"]
    by_signer = fx.signatures(Path(registry_world["platform"][1]).read_text())
    by_signer = type(by_signer)(**{**by_signer.__dict__, "verify_by": "signer"})
    trust = image_trust.trust_for(image, by_signer, "/keys/platform.pub", insecure_registry=False)
    assert trust.identity == image.signer.subject and trust.issuer == image.signer.issuer
    assert "--certificate-identity-regexp" in trust.verify_args
    assert image_trust.trust_for(image, registry_world["settings"], "/keys/platform.pub", False).public_key == "/keys/platform.pub"
    seen = []
    verified, problems = image_trust.check({("ghcr.io/hashicorp/vault", image.digest)}, keyless, by_signer,
                                           verify=lambda ref, trust: seen.append((ref, trust.identity)))
    assert problems == [] and seen == [(f"ghcr.io/hashicorp/vault@{image.digest}", image.signer.subject)]
    assert verified[0].trusted.startswith("keyless https://github.com/hashicorp/vault/")
