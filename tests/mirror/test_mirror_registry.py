"""The mirror end to end between two real registries on 127.0.0.1.

Two Debian ``docker-registry`` processes play the upstream and the platform registry; the images are small
OCI images written and pushed here (one of them a two-platform index), signed with cosign keys generated
here. A keyless-signed stand-in is out of reach offline (no Fulcio, no OIDC token), so the upstream
signature of the "keyless" image is a key signature checked through the same verification code path
(``release.verify`` with a ``Trust``); the identity form of that trust is tested for its cosign arguments.
Trivy cannot run offline, so the scan step runs tests/mirror/advisory_scanner.py, which writes Trivy's
report format from the packages the image really contains.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from components.cve_waivers import Waiver
from tests.images.conftest import _tool, keys
from tests.local_registry import local_registry
from tests.mirror.oci_fixtures import write_layout
from tools.images import release
from tools.images.release import ReleaseError, Signing, Trust
from tools.mirror.items import MirrorItem
from tools.mirror.pipeline import MirrorConfig, mirror_all
from tools.mirror.report import FAILED, REFUSED, SIGNED, Report, key_fingerprint

pytestmark = pytest.mark.skipif(
    any(_tool(t) is None for t in ("cosign", "skopeo", "docker-registry")),
    reason="needs cosign, skopeo and docker-registry: `make image-tools` (tools/fetch_image_tools.sh)",
)

SCANNER = Path(__file__).with_name("advisory_scanner.py")
TODAY = dt.date(2026, 11, 29)
STATUS = """Package: libidn2-0
Status: install ok installed
Architecture: amd64
Version: 2.0.5-1
Source: libidn2

Package: zlib1g
Status: install ok installed
Architecture: amd64
Version: 1:1.2.13.dfsg-1

"""
OS_RELEASE = b'ID=debian\nVERSION_ID="12"\n'
ADVISORY = {"id": "CVE-2019-18224", "package": "libidn2-0", "version": "2.0.5-1", "severity": "CRITICAL", "fixed": "2.0.5-1+deb10u1"}


def debian_layers(status: str) -> list[dict[str, bytes]]:
    return [{"etc/os-release": OS_RELEASE}, {"var/lib/dpkg/status": status.encode()}]


CLEAN = STATUS.replace("2.0.5-1\n", "2.0.5-1+deb10u1\n")


@pytest.fixture()
def world(tmp_path):
    """Two registries, three key pairs (upstream stand-in, platform, a stranger) and the scanner's advisories."""
    with local_registry(_tool("docker-registry"), _mkdir(tmp_path / "upstream")) as (upstream, _), \
            local_registry(_tool("docker-registry"), _mkdir(tmp_path / "platform")) as (platform, _):
        advisories = tmp_path / "advisories.json"
        advisories.write_text(json.dumps([ADVISORY]))
        yield {
            "tmp": tmp_path, "upstream": upstream, "platform": platform,
            "upstream_key": keys(tmp_path / "upstream-key"), "platform_key": keys(tmp_path / "platform-key"),
            "stranger_key": keys(tmp_path / "stranger-key"),
            "scanner": f"{sys.executable} {SCANNER} --advisories {advisories} --layout {{layout}} --output {{output}}",
        }


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def push(world, repository: str, tag: str, platforms: dict[str, list[dict[str, bytes]]]) -> str:
    layout = world["tmp"] / "layouts" / repository.replace("/", "_")
    digest = write_layout(layout, platforms)
    tagged = f"{world['upstream']}/{repository}:{tag}"
    subprocess.run([_tool("skopeo"), "copy", "--quiet", "--all", "--preserve-digests", "--dest-tls-verify=false",
                    f"oci:{layout}", f"docker://{tagged}"], check=True, capture_output=True)
    return digest


def cosign(world, *args: str) -> None:
    done = subprocess.run([_tool("cosign"), *args], capture_output=True, text=True, env={**os.environ, "COSIGN_PASSWORD": ""})
    assert done.returncode == 0, done.stderr


def upstream_sign(world, reference: str, key_pair=None, sbom: dict | None = None) -> None:
    private, _ = key_pair or world["upstream_key"]
    cosign(world, "sign", "--yes", "--key", private, "--tlog-upload=false", "--allow-insecure-registry", reference)
    if sbom is not None:
        predicate = world["tmp"] / "upstream-sbom.json"
        predicate.write_text(json.dumps(sbom))
        cosign(world, "attest", "--yes", "--type", "cyclonedx", "--predicate", str(predicate), "--key", private,
               "--tlog-upload=false", "--allow-insecure-registry", reference)


def item(world, key: str, repository: str, digest: str, signed_upstream: bool, waivers=()) -> MirrorItem:
    trust = Trust(public_key=world["upstream_key"][1]) if signed_upstream else None
    return MirrorItem(key=key, source=f"{world['upstream']}/{repository}", repository=repository, tag="1.0.0",
                      digest=digest, upstream=trust, waivers=tuple(waivers))


def config(world, today: dt.date = TODAY) -> MirrorConfig:
    private, public = world["platform_key"]
    return MirrorConfig(registry=f"{world['platform']}/mirror", work=world["tmp"] / "work", scanner=world["scanner"],
                        signing=Signing(key=private, public_key=public, insecure_registry=True), insecure_upstream=True,
                        today=today)


def raw_manifest(reference: str) -> bytes:
    return subprocess.run([_tool("skopeo"), "inspect", "--raw", "--tls-verify=false", f"docker://{reference}"],
                          check=True, capture_output=True).stdout


def in_platform_registry(world, repository: str, digest: str) -> bool:
    done = subprocess.run([_tool("skopeo"), "inspect", "--raw", "--tls-verify=false",
                           f"docker://{world['platform']}/mirror/{repository}@{digest}"], capture_output=True)
    return done.returncode == 0


UPSTREAM_SBOM = {"bomFormat": "CycloneDX", "specVersion": "1.6", "version": 1,
                 "metadata": {"component": {"type": "container", "name": "vendor/agent", "version": "1.0.0"}},
                 "components": [{"type": "library", "name": "agent", "version": "1.0.0", "purl": "pkg:golang/example.com/agent@1.0.0"}]}


def test_every_image_is_copied_by_digest_verified_scanned_attested_and_signed(world):
    multi = push(world, "vendor/agent", "1.0.0", {"linux/amd64": debian_layers(CLEAN), "linux/arm64": debian_layers(CLEAN)})
    upstream_sign(world, f"{world['upstream']}/vendor/agent@{multi}", sbom=UPSTREAM_SBOM)
    plain = push(world, "vendor/db", "1.0.0", {"linux/amd64": debian_layers(CLEAN)})
    waived = push(world, "vendor/idn", "1.0.0", {"linux/amd64": debian_layers(STATUS)})
    waiver = Waiver(vulnerability="CVE-2019-18224", reason="IDNA conversion unused by this image", expires=dt.date(2026, 12, 31))
    items = [item(world, "agent", "vendor/agent", multi, signed_upstream=True),
             item(world, "db", "vendor/db", plain, signed_upstream=False),
             item(world, "idn", "vendor/idn", waived, signed_upstream=False, waivers=[waiver])]
    report_path = world["tmp"] / "report.json"
    lines: list[str] = []

    report = mirror_all(items, config(world), report_path, log=lines.append)

    assert {k: e.state for k, e in report.entries.items()} == {"agent": SIGNED, "db": SIGNED, "idn": SIGNED}, lines
    # digests unchanged, every platform of the index included
    source_index, target_index = raw_manifest(f"{world['upstream']}/vendor/agent@{multi}"), raw_manifest(f"{world['platform']}/mirror/vendor/agent@{multi}")
    assert target_index == source_index and "sha256:" + hashlib.sha256(target_index).hexdigest() == multi
    for manifest in json.loads(target_index)["manifests"]:
        assert in_platform_registry(world, "vendor/agent", manifest["digest"])
    # signed with the platform key, SBOM attested: the upstream's where it publishes one, generated otherwise
    platform = config(world).signing.trust
    assert release.attested_sboms(f"{world['platform']}/mirror/vendor/agent@{multi}", platform) == [UPSTREAM_SBOM]
    (generated,) = release.attested_sboms(f"{world['platform']}/mirror/vendor/db@{plain}", platform)
    assert {c["name"] for c in generated["components"]} >= {"libidn2-0", "zlib1g"}
    assert report.entries["agent"].upstream_signature.startswith("verified against key")
    assert report.entries["db"].upstream_signature.startswith("none: the upstream publishes no signature")
    (waived_finding,) = report.entries["idn"].scan["waived"]
    assert {k: waived_finding[k] for k in ("waiver", "expires")} == {"waiver": "CVE-2019-18224", "expires": "2026-12-31"}
    assert "CVE-2019-18224" in waived_finding["finding"] and "libidn2-0 2.0.5-1" in waived_finding["finding"]
    # the report on disk is the one returned, with the platform key's fingerprint
    assert Report.load(report_path) == report
    assert report.platform_key == key_fingerprint(Path(world["platform_key"][1]).read_text())


def test_a_second_run_skips_what_is_done_and_an_interrupted_run_finishes(world):
    digests = {name: push(world, f"vendor/{name}", "1.0.0", {"linux/amd64": debian_layers(CLEAN)}) for name in ("a", "b", "c")}
    items = [item(world, name, f"vendor/{name}", digest, signed_upstream=False) for name, digest in digests.items()]
    report_path = world["tmp"] / "report.json"

    def interrupt_after_first(line: str) -> None:
        raise KeyboardInterrupt(line)

    with pytest.raises(KeyboardInterrupt):
        mirror_all(items, config(world), report_path, log=interrupt_after_first)
    assert {k: e.state for k, e in Report.load(report_path).entries.items()} == {"a": SIGNED}

    resumed: list[str] = []
    report = mirror_all(items, config(world), report_path, log=resumed.append)
    assert {k: e.state for k, e in report.entries.items()} == {"a": SIGNED, "b": SIGNED, "c": SIGNED}
    assert ["skipped" in line for line in resumed] == [True, False, False]

    again: list[str] = []
    mirror_all(items, config(world), report_path, log=again.append)
    assert all("already mirrored, skipped" in line for line in again) and len(again) == 3


def test_refusals_leave_nothing_in_the_platform_registry(world):
    unsigned = push(world, "vendor/unsigned", "1.0.0", {"linux/amd64": debian_layers(CLEAN)})
    stranger = push(world, "vendor/stranger", "1.0.0", {"linux/amd64": debian_layers(CLEAN.replace("zlib1g", "zlib1g-dev"))})
    upstream_sign(world, f"{world['upstream']}/vendor/stranger@{stranger}", key_pair=world["stranger_key"])
    critical = push(world, "vendor/critical", "1.0.0", {"linux/amd64": debian_layers(STATUS)})
    items = [item(world, "unsigned", "vendor/unsigned", unsigned, signed_upstream=True),
             item(world, "stranger", "vendor/stranger", stranger, signed_upstream=True),
             item(world, "critical", "vendor/critical", critical, signed_upstream=False)]

    report = mirror_all(items, config(world), world["tmp"] / "report.json", log=lambda line: None)

    assert {k: e.state for k, e in report.entries.items()} == {"unsigned": REFUSED, "stranger": REFUSED, "critical": REFUSED}
    assert report.entries["unsigned"].reason.startswith("upstream signature does not verify against key")
    assert report.entries["stranger"].reason.startswith("upstream signature does not verify against key")
    assert "CVE-2019-18224 CRITICAL in libidn2-0 2.0.5-1" in report.entries["critical"].reason
    for repository, digest in (("vendor/unsigned", unsigned), ("vendor/stranger", stranger), ("vendor/critical", critical)):
        assert not in_platform_registry(world, repository, digest)


def test_an_expired_waiver_refuses_again_even_an_image_signed_under_it(world):
    digest = push(world, "vendor/idn", "1.0.0", {"linux/amd64": debian_layers(STATUS)})
    waiver = Waiver(vulnerability="CVE-2019-18224", reason="IDNA conversion unused", expires=dt.date(2026, 12, 31))
    items = [item(world, "idn", "vendor/idn", digest, signed_upstream=False, waivers=[waiver])]
    report_path = world["tmp"] / "report.json"
    assert mirror_all(items, config(world), report_path, log=lambda line: None).entries["idn"].state == SIGNED

    later = mirror_all(items, config(world, today=dt.date(2027, 1, 1)), report_path, log=lambda line: None)

    assert later.entries["idn"].state == REFUSED
    assert "waiver expired on 2026-12-31" in later.entries["idn"].reason


def test_a_missing_scanner_fails_the_image_and_the_next_run_retries_it(world):
    digest = push(world, "vendor/db", "1.0.0", {"linux/amd64": debian_layers(CLEAN)})
    items = [item(world, "db", "vendor/db", digest, signed_upstream=False)]
    report_path = world["tmp"] / "report.json"
    broken = dataclasses.replace(config(world), scanner="no-such-trivy image --input {layout} --output {output}")
    failed = mirror_all(items, broken, report_path, log=lambda line: None).entries["db"]
    assert failed.state == FAILED and "scanner 'no-such-trivy' not found" in failed.reason
    assert not in_platform_registry(world, "vendor/db", digest)
    assert mirror_all(items, config(world), report_path, log=lambda line: None).entries["db"].state == SIGNED


def test_a_report_signed_with_another_key_is_not_resumed_from(world):
    digest = push(world, "vendor/db", "1.0.0", {"linux/amd64": debian_layers(CLEAN)})
    items = [item(world, "db", "vendor/db", digest, signed_upstream=False)]
    report_path = world["tmp"] / "report.json"
    mirror_all(items, config(world), report_path, log=lambda line: None)
    private, public = world["stranger_key"]
    rotated = dataclasses.replace(config(world), signing=Signing(key=private, public_key=public, insecure_registry=True))
    lines: list[str] = []
    report = mirror_all(items, rotated, report_path, log=lines.append)
    assert report.entries["db"].state == SIGNED and "skipped" not in lines[0]
    release.verify(f"{world['platform']}/mirror/vendor/db@{digest}", rotated.signing.trust)  # the new key's signature


def test_a_keyless_trust_names_the_identity_and_a_release_pattern_becomes_an_anchored_regexp():
    exact = Trust(identity="https://github.com/argoproj/argo-cd/.github/workflows/image-reuse.yaml@refs/tags/v3.4.4",
                  issuer="https://token.actions.githubusercontent.com")
    assert exact.verify_args == ["--certificate-identity", exact.identity, "--certificate-oidc-issuer", exact.issuer]
    pattern = Trust(identity="https://github.com/o/r/.github/workflows/release.yaml@refs/tags/*", issuer="https://i")
    assert pattern.verify_args[:2] == ["--certificate-identity-regexp",
                                       r"^https://github\.com/o/r/\.github/workflows/release\.yaml@refs/tags/.*$"]
    with pytest.raises(ReleaseError, match="needs its OIDC issuer"):
        Trust(identity="https://github.com/o/r/x@refs/tags/v1")
