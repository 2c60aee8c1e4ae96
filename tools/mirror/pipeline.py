"""Mirror one third-party image into the platform registry, refusing it unless every rule holds.

For each image, in this order (docs/runbooks/supply-chain.md):
1. upstream signature: a keyless signer's signature must verify against its issuer and subject (cosign);
   a ``platform`` signer records that the upstream publishes none;
2. fetch: ``skopeo copy --all`` of the upstream digest into a local OCI layout (every platform);
3. scan: the pinned scanner (Trivy JSON) over that layout; a critical finding refuses the image unless a
   current waiver in its catalog entry covers it (components/cve_waivers.py; an expired one refuses again);
4. SBOM: the upstream's CycloneDX attestation where it publishes one that verifies against the same
   trust, otherwise one generated from the layout (tools/mirror/image_sbom.py);
5. copy: ``skopeo copy --all --preserve-digests`` registry to registry; the platform registry must then serve
   the pinned digest;
6. sign the digest and attest the SBOM with the platform key, then verify both before the image counts.
Steps 1-4 run before anything is written to the platform registry, so a refused image never reaches it.
An image already signed at that digest with the same key (and not relying on an expired waiver) is skipped.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tools.images import release, vulngate
from tools.images.release import ReleaseError, Signing
from tools.mirror import image_sbom
from tools.mirror.items import MirrorItem
from tools.mirror.report import FAILED, REFUSED, SIGNED, Entry, Report, key_fingerprint

TRIVY = "trivy image --quiet --input {layout} --format json --exit-code 0 --output {output}"
"""The release pipeline's scanner (Trivy v0.68.1, .github/workflows/release.yml) over the fetched layout."""


class Refused(Exception):
    """A rule refuses the image; the message says which and why."""


@dataclass(frozen=True)
class MirrorConfig:
    """Where images go and how they are signed; ``scanner`` is a command with {layout}, {output}, {image}."""

    registry: str
    signing: Signing
    work: Path
    scanner: str = TRIVY
    insecure_upstream: bool = False
    today: dt.date = field(default_factory=dt.date.today)

    def upstream_trust(self, item: MirrorItem) -> release.Trust:
        """The item's upstream trust over this run's transport (plain HTTP for a test registry)."""
        return dataclasses.replace(item.upstream, insecure_registry=self.insecure_upstream)

    @property
    def platform_key(self) -> str:
        return key_fingerprint(Path(self.signing.public_key).read_text(encoding="utf-8"))


def _tls(flag: str, insecure: bool) -> list[str]:
    return [f"--{flag}=false"] if insecure else []


def check_upstream_signature(item: MirrorItem, config: MirrorConfig) -> str:
    if item.upstream is None:
        return item.upstream_signature()
    try:
        release.verify(item.source_ref, config.upstream_trust(item))
    except ReleaseError as error:
        raise Refused(f"upstream signature does not verify against {item.upstream.describe()}: {error}") from None
    return item.upstream_signature()


def fetch(item: MirrorItem, config: MirrorConfig) -> Path:
    """Every platform of the upstream digest, byte for byte, as a local OCI layout (for the scanner and the SBOM).

    skopeo's ``oci:`` transport cannot keep a Docker manifest list unconverted, so the image is copied to
    ``dir:`` with its digests preserved and laid out as OCI here: the layout then holds exactly the
    manifests the platform registry will serve, and its top digest must be the pinned one."""
    folder = config.work / item.key
    shutil.rmtree(folder / "dir", ignore_errors=True)
    shutil.rmtree(folder / "oci", ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    release.run_step("fetch (skopeo copy --all --preserve-digests)", item.source_ref,
                     [release.tool("skopeo"), "copy", "--quiet", "--all", "--preserve-digests",
                      *_tls("src-tls-verify", config.insecure_upstream), f"docker://{item.source_ref}", f"dir:{folder / 'dir'}"])
    return oci_layout_of(folder / "dir", folder / "oci", item.digest, item.tag)


def oci_layout_of(copied: Path, layout: Path, digest: str, tag: str) -> Path:
    """An OCI image layout holding the blobs and manifests of a ``dir:`` copy unchanged."""
    top = (copied / "manifest.json").read_bytes()
    if "sha256:" + hashlib.sha256(top).hexdigest() != digest:
        raise ReleaseError(f"{copied}: the fetched manifest is not {digest}")
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    for path in copied.iterdir():
        if path.name in ("manifest.json", "version"):
            continue
        name = path.name.removesuffix(".manifest.json")
        path.replace(blobs / name)
    (blobs / digest.removeprefix("sha256:")).write_bytes(top)
    media_type = json.loads(top).get("mediaType") or "application/vnd.oci.image.manifest.v1+json"
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}', encoding="utf-8")
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": media_type, "digest": digest, "size": len(top), "annotations": {"org.opencontainers.image.ref.name": tag}}]}),
        encoding="utf-8")
    return layout


def scan(item: MirrorItem, layout: Path, config: MirrorConfig) -> dict:
    """Run the scanner; refuse on an unwaived critical finding. Returns the report entry's ``scan``."""
    output = config.work / item.key / "scan.trivy.json"
    output.unlink(missing_ok=True)
    command = [part.format(layout=layout, output=output, image=item.source_ref) for part in shlex.split(config.scanner)]
    if shutil.which(command[0]) is None and not Path(command[0]).is_file():
        raise ReleaseError(f"{item.key}: scanner {command[0]!r} not found (the release pipeline's Trivy v0.68.1, or --scanner)")
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0 or not output.exists():
        raise ReleaseError(f"{item.key}: scanner failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-1500:]}")
    try:
        findings = vulngate.read_report(output)
    except vulngate.GateConfigError as error:
        raise ReleaseError(f"{item.key}: {error}") from None
    verdict = vulngate.evaluate(findings, list(item.waivers), today=config.today)
    critical = [f for f in findings if f.severity == vulngate.BLOCKING]
    waived = [{"finding": f.describe(), "waiver": w.vulnerability, "expires": w.expires.isoformat()}
              for f in critical for w in item.waivers if w.covers(f.vulnerability, f.package) and w.current(config.today)]
    if not verdict.passed:
        raise Refused("critical findings: " + "; ".join(verdict.blocking))
    return {"findings": len(findings), "critical": len(critical), "waived": waived}


def sbom(item: MirrorItem, layout: Path, config: MirrorConfig) -> tuple[Path, str]:
    """The SBOM to attest and where it came from."""
    path = config.work / item.key / "sbom.cdx.json"
    if item.upstream is not None:
        try:
            published = release.attested_sboms(item.source_ref, config.upstream_trust(item))
        except ReleaseError:
            published = []  # none published, or none that verifies: generate one rather than trust it
        if published:
            path.write_text(json.dumps(published[0], indent=2, sort_keys=True), encoding="utf-8")
            return path, f"the upstream's CycloneDX attestation, verified against {item.upstream.describe()}"
    document = image_sbom.image_sbom(layout, name=item.source, version=item.tag, digest=item.digest)
    path.write_text(json.dumps(document, indent=2, sort_keys=True), encoding="utf-8")
    return path, "generated from the image's package databases (tools/mirror/image_sbom.py)"


def copy(item: MirrorItem, config: MirrorConfig) -> str:
    """Registry to registry by digest, every platform, digests unchanged; returns the target reference."""
    tagged = f"{item.target_name(config.registry)}:{item.tag}"
    release.run_step("copy (skopeo copy --all --preserve-digests)", tagged,
                     [release.tool("skopeo"), "copy", "--quiet", "--all", "--preserve-digests",
                      *_tls("src-tls-verify", config.insecure_upstream), *_tls("dest-tls-verify", config.signing.insecure_registry),
                      f"docker://{item.source_ref}", f"docker://{tagged}"])
    served = release.registry_digest(tagged, config.signing.insecure_registry)
    if served != item.digest:
        raise ReleaseError(f"{tagged}: the platform registry serves {served}, the catalog pins {item.digest}")
    return item.target_ref(config.registry)


def already_mirrored(item: MirrorItem, previous: Entry | None, config: MirrorConfig) -> bool:
    """Signed before at this digest, under waivers still current, and the registry still verifies it."""
    if previous is None or previous.state != SIGNED or previous.digest != item.digest:
        return False
    if previous.target != item.target_name(config.registry) or not previous.waivers_still_current(config.today.isoformat()):
        return False
    try:
        release.verify(item.target_ref(config.registry), config.signing.trust)
        release.attested_sboms(item.target_ref(config.registry), config.signing.trust)
    except ReleaseError:
        return False
    return True


def mirror_one(item: MirrorItem, config: MirrorConfig, previous: Entry | None = None) -> tuple[Entry, bool]:
    """The image's report entry, and whether it was skipped as already mirrored."""
    entry = Entry(key=item.key, source=item.source_ref, target=item.target_name(config.registry), digest=item.digest, state=FAILED)
    if already_mirrored(item, previous, config):
        return previous, True
    try:
        entry.upstream_signature = check_upstream_signature(item, config)
        layout = fetch(item, config)
        entry.scan = scan(item, layout, config)
        sbom_path, entry.sbom = sbom(item, layout, config)
        target = copy(item, config)
        release.sign_and_attest(target, sbom_path, config.signing)
        release.verify(target, config.signing.trust, sbom_path)
        entry.state = SIGNED
    except Refused as refusal:
        entry.state, entry.reason = REFUSED, str(refusal)
    except (ReleaseError, image_sbom.SbomError) as error:
        entry.state, entry.reason = FAILED, str(error)
    return entry, False


def mirror_all(items: list[MirrorItem], config: MirrorConfig, report_path: Path, log=print) -> Report:
    """Mirror every item, saving the report after each so an interrupted run resumes where it stopped.

    A report for another registry or signing key is not resumed from: every image is checked afresh."""
    fingerprint = config.platform_key
    report = Report.load(report_path)
    if report is None or report.registry != config.registry or report.platform_key != fingerprint:
        report = Report(registry=config.registry, platform_key=fingerprint)
    for item in items:
        entry, skipped = mirror_one(item, config, report.entries.get(item.key))
        report.entries[item.key] = entry
        report.save(report_path)
        note = "already mirrored, skipped" if skipped else entry.reason or entry.sbom
        log(f"{entry.state.upper():8} {item.key}: {item.source_ref} -> {entry.target} ({note})")
    return report
