"""Promotion to staging and prod reads the mirror: a rendered plan is refused unless every image it pulls is in the
mirror report as signed, with the one key prod's admission policies trust; and the mirror refuses to sign
for a stack with any other key."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from components import catalog
from tests.helpers import stack_document
from tools.mirror import promotion
from tools.mirror.__main__ import StackError, signing_matches_stack, stack_target
from tools.mirror.items import items_from_catalog
from tools.mirror.report import REFUSED, SIGNED, Entry, Report, key_fingerprint

ROOT = Path(__file__).resolve().parents[2]


def generated_public_key() -> str:
    """A fresh P-256 public key (cosign's key type): certainly not the stack's."""
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


OTHER_KEY = generated_public_key()


def prod_key_pem() -> str:
    return stack_document("prod")["somaagenthub:mesh"]["signatures"]["platformKey"]["publicKeyPem"]


def complete_report(images: set[tuple[str, str]], registry: str, key_pem: str) -> Report:
    """What a mirror run that signed every image would have written."""
    entries = {name.rsplit("/", 1)[-1] + digest[7:15]: Entry(key=name, source="upstream", target=name, digest=digest, state=SIGNED)
               for name, digest in images}
    return Report(registry=registry, platform_key=key_fingerprint(key_pem), entries=entries)


@pytest.fixture(scope="module")
def prod(rendered):
    build = rendered["prod"][2]
    return build, promotion.rendered_images(build), promotion.admission_keys(build)


def test_every_image_of_the_prod_plan_is_found_including_chart_rendered_ones(prod):
    _, images, _ = prod
    assert {name for name, _ in images} == {f"registry.soma.example.com/mirror/{i.repository}" for i in catalog.load().images.values()}
    assert ("registry.soma.example.com/mirror/openfga/openfga", catalog.load().images["openfga"].digest) in images  # a chart's Deployment


def test_prod_admission_trusts_exactly_the_stack_platform_key(prod):
    _, _, keys = prod
    assert keys == {key_fingerprint(prod_key_pem())}


def test_a_plan_whose_images_are_all_mirrored_with_the_trusted_key_may_be_promoted(prod):
    _, images, keys = prod
    assert promotion.problems(images, complete_report(images, "registry.soma.example.com/mirror", prod_key_pem()),
                              "registry.soma.example.com/mirror", keys) == []


def test_one_image_missing_or_refused_by_the_mirror_refuses_the_plan_naming_it(prod):
    _, images, keys = prod
    report = complete_report(images, "registry.soma.example.com/mirror", prod_key_pem())
    vault = next(key for key, e in report.entries.items() if e.target.endswith("/hashicorp/vault"))
    missing = report.entries.pop(vault)
    found = promotion.problems(images, report, "registry.soma.example.com/mirror", keys)
    assert found == [f"{missing.target}@{missing.digest}: not in the mirror report (not mirrored, scanned and signed)"]
    report.entries[vault] = Entry(key=vault, source="upstream", target=missing.target, digest=missing.digest, state=REFUSED,
                                  reason="critical findings: CVE-2025-0001 CRITICAL")
    assert promotion.problems(images, report, "registry.soma.example.com/mirror", keys) == [
        f"{missing.target}@{missing.digest}: mirror state refused: critical findings: CVE-2025-0001 CRITICAL"]


def test_images_signed_with_another_key_or_for_another_registry_refuse_the_plan(prod):
    _, images, keys = prod
    other_key = promotion.problems(images, complete_report(images, "registry.soma.example.com/mirror", OTHER_KEY),
                                   "registry.soma.example.com/mirror", keys)
    assert len(other_key) == 1 and "every image would be refused at admission" in other_key[0]
    other_registry = promotion.problems(images, complete_report(images, "registry.other.example.com", prod_key_pem()),
                                        "registry.soma.example.com/mirror", keys)
    assert other_registry[0] == "the mirror report is for registry registry.other.example.com, the stack pulls from registry.soma.example.com/mirror"
    assert promotion.problems(images, None, "registry.soma.example.com/mirror", keys)[0].startswith("no mirror report")


def test_the_check_command_refuses_the_rendered_prod_plan_without_a_report(prod, tmp_path):
    build, images, _ = prod
    done = subprocess.run([sys.executable, "-m", "tools.mirror", "check", "--stack", "prod", "--build", str(build),
                           "--report", str(tmp_path / "absent.json")], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 1
    assert "REFUSED no mirror report" in done.stdout and f"prod: {len(images)} images, refused" in done.stdout


def test_the_mirror_signs_only_with_the_key_the_stack_trusts(tmp_path):
    registry, trusted_pem, trusted_kms = stack_target("prod")
    assert registry == "registry.soma.example.com/mirror"
    ours = tmp_path / "cosign.pub"
    ours.write_text(prod_key_pem())
    signing_matches_stack(ours, "cosign.key", trusted_pem, trusted_kms)  # the stack's own key: accepted
    ours.write_text(OTHER_KEY)
    with pytest.raises(StackError, match="the stack's admission trusts sha256:"):
        signing_matches_stack(ours, "cosign.key", trusted_pem, trusted_kms)


def test_a_stack_that_pulls_from_upstream_has_nothing_to_mirror_into():
    with pytest.raises(StackError, match="stack dev pulls from upstream"):
        stack_target("dev")


def test_the_catalog_becomes_mirror_items_keyless_signers_as_identities():
    items = {i.key: i for i in items_from_catalog(catalog.load())}
    assert len(items) == len(catalog.load().images)
    argocd = items["argocd"]
    assert argocd.upstream.identity == catalog.load().images["argocd"].signer.subject
    assert argocd.upstream.issuer == "https://token.actions.githubusercontent.com"
    assert items["vault"].upstream is None and items["vault"].upstream_signature().startswith("none")
    assert items["vault"].target_ref("registry.soma.example.com/mirror") == (
        f"registry.soma.example.com/mirror/hashicorp/vault@{catalog.load().images['vault'].digest}")
    with pytest.raises(KeyError, match="no-such-image"):
        items_from_catalog(catalog.load(), frozenset({"no-such-image"}))


def test_staging_pulls_from_the_same_mirror_with_the_same_trusted_key_so_one_mirror_run_serves_both(prod, rendered, tmp_path):
    """Staging is where a release is proven before prod: it must run the very bytes prod will run, so it pulls
    the same mirrored, scanned and signed copies (`make mirror-check STACK=staging`)."""
    assert stack_target("staging") == stack_target("prod")
    _, prod_images, _ = prod
    build = rendered["staging"][2]
    staging_images = promotion.rendered_images(build)
    assert staging_images and staging_images <= prod_images
    assert promotion.admission_keys(build) == {key_fingerprint(prod_key_pem())}
    report = tmp_path / "report.json"
    complete_report(prod_images, "registry.soma.example.com/mirror", prod_key_pem()).save(report)
    done = subprocess.run([sys.executable, "-m", "tools.mirror", "check", "--stack", "staging", "--build", str(build),
                           "--report", str(report)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"staging: {len(staging_images)} images, every one mirrored, scanned and signed" in done.stdout
