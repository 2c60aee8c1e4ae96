"""Promote built images: push, read the registry's digest, sign, attest the SBOM, verify, pin in the catalog.

For each ``build/images/<app>/build.json`` (tools/images/build.py):
1. ``skopeo copy --preserve-digests`` pushes the OCI layout to ``<registry>/<app>:<version>``;
2. the registry's manifest is read back (``skopeo inspect --raw``) and its sha256 must equal the built digest;
3. ``cosign sign`` signs ``<registry>/<app>@<digest>`` (a key here; keyless with the CI's OIDC identity);
4. ``cosign attest --type cyclonedx`` attaches the SBOM as a signed in-toto attestation;
5. ``cosign verify`` and ``cosign verify-attestation`` must accept both with the expected key or identity,
   and the attested SBOM must be the built one, before anything is promoted;
6. the app's entry in platform.lock.yaml ``apps`` is written (digest, SBOM reference, signer) and the whole
   file is validated by components/catalog.py before it is replaced.
A failing step stops the release with the step and the tool's message; nothing is pinned for that app.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import yaml

from components import catalog

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SBOM_PREDICATE = catalog.SBOM_PREDICATE


class ReleaseError(RuntimeError):
    """A release step failed; the message names the image and the step."""


def tool(name: str) -> str:
    """A tool from the environment override, PATH, or .tools/bin (where `make image-tools` puts cosign)."""
    for candidate in (os.environ.get(name.upper().replace("-", "_")), shutil.which(name), str(PROJECT_ROOT / ".tools" / "bin" / name)):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise ReleaseError(f"{name} not found: run `make image-tools` (tools/fetch_image_tools.sh)")


class Verifier(Protocol):
    """What ``verify`` needs: the cosign arguments naming the accepted key or identity, and the transport."""

    @property
    def verify_args(self) -> list[str]: ...

    insecure_registry: bool


@dataclass(frozen=True)
class Trust:
    """What a signature must verify against: a public key, or a keyless identity (certificate subject and
    OIDC issuer). The release pipeline's own signatures and upstream signatures (the mirror) use the same checks."""

    public_key: str = ""
    identity: str = ""
    issuer: str = ""
    insecure_registry: bool = False

    def __post_init__(self):
        if bool(self.public_key) == bool(self.identity):
            raise ReleaseError("trust either a public key or a keyless identity, not both or neither")
        if self.identity and not self.issuer:
            raise ReleaseError(f"keyless identity {self.identity!r} needs its OIDC issuer")

    @property
    def verify_args(self) -> list[str]:
        if self.public_key:
            base = ["--key", self.public_key, "--insecure-ignore-tlog"]
        elif "*" in self.identity:  # a documented identity pattern (any release tag): anchored, only * is a wildcard
            pattern = "^" + ".*".join(re.escape(part) for part in self.identity.split("*")) + "$"
            base = ["--certificate-identity-regexp", pattern, "--certificate-oidc-issuer", self.issuer]
        else:
            base = ["--certificate-identity", self.identity, "--certificate-oidc-issuer", self.issuer]
        return [*base, *(["--allow-insecure-registry"] if self.insecure_registry else [])]

    def describe(self) -> str:
        return f"key {self.public_key}" if self.public_key else f"identity {self.identity} (issuer {self.issuer})"

    @classmethod
    def upstream_of(cls, signer: catalog.Signer, insecure_registry: bool = False) -> Trust | None:
        """The keyless identity a catalog signer names, or None for ``platform``: the upstream then publishes no
        identity to verify, and the platform key's signature (the mirror's) is the only one there is."""
        if signer.kind != "keyless":
            return None
        return cls(identity=signer.subject, issuer=signer.issuer, insecure_registry=insecure_registry)


@dataclass(frozen=True)
class Signing:
    """How images are signed and what verification must accept: a key pair, or a keyless identity."""

    key: str = ""
    public_key: str = ""
    identity: str = ""
    issuer: str = ""
    insecure_registry: bool = False

    def __post_init__(self):
        if bool(self.key) == bool(self.identity):
            raise ReleaseError("sign with either --key (and --public-key) or keyless (--identity and --issuer), not both or neither")
        if self.key and not self.public_key:
            raise ReleaseError("--key needs --public-key: verification before promotion uses the public half")
        if self.identity and not self.issuer:
            raise ReleaseError("keyless signing needs --issuer (the CI's OIDC issuer) beside --identity")

    @property
    def sign_args(self) -> list[str]:
        # With a key and no transparency log reachable here, the log is left out (the policy-controller's
        # platform authority has no ctlog either); keyless signatures go to the public log.
        base = ["--key", self.key, "--tlog-upload=false"] if self.key else []
        return [*base, *(["--allow-insecure-registry"] if self.insecure_registry else [])]

    @property
    def trust(self) -> Trust:
        """What verification of these signatures must accept."""
        return Trust(public_key=self.public_key if self.key else "", identity=self.identity, issuer=self.issuer,
                     insecure_registry=self.insecure_registry)

    @property
    def verify_args(self) -> list[str]:
        return self.trust.verify_args

    def signer(self, workflow_source: str = "") -> dict[str, str]:
        if self.key:
            return {"kind": "platform"}
        return {"kind": "keyless", "issuer": self.issuer, "subject": self.identity,
                "source": workflow_source or "the release workflow, .github/workflows/release.yml"}


def run_step(step: str, image: str, cmd: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env={**os.environ, **(env or {})})
    if done.returncode != 0:
        raise ReleaseError(f"{image}: {step} failed: {done.stderr.strip()[-2000:] or done.stdout.strip()[-2000:]}")
    return done


def cosign(step: str, image: str, *args: str) -> subprocess.CompletedProcess:
    # COSIGN_PASSWORD: the pipeline's key is unencrypted or its password is in the environment
    return run_step(step, image, [tool("cosign"), *args], env={"COSIGN_PASSWORD": os.environ.get("COSIGN_PASSWORD", "")})


def push(layout: Path, tag: str, reference: str, insecure: bool) -> None:
    tls = ["--dest-tls-verify=false"] if insecure else []
    run_step("push (skopeo copy --preserve-digests)", reference,
         [tool("skopeo"), "copy", "--quiet", "--preserve-digests", *tls, f"oci:{layout}:{tag}", f"docker://{reference}"])


def registry_digest(reference: str, insecure: bool) -> str:
    """The digest of the manifest as the registry serves it (sha256 of its bytes)."""
    tls = ["--tls-verify=false"] if insecure else []
    raw = subprocess.run([tool("skopeo"), "inspect", "--raw", *tls, f"docker://{reference}"], capture_output=True, timeout=120)
    if raw.returncode != 0:
        raise ReleaseError(f"{reference}: reading the manifest back failed: {raw.stderr.decode()[-2000:]}")
    return "sha256:" + hashlib.sha256(raw.stdout).hexdigest()


def sign_and_attest(image: str, sbom: Path, signing: Signing) -> None:
    cosign("sign", image, "sign", "--yes", *signing.sign_args, image)
    cosign("attest (cyclonedx SBOM)", image, "attest", "--yes", "--type", "cyclonedx", "--predicate", str(sbom),
            *signing.sign_args, image)


def verify(image: str, signing: Verifier, sbom: Path | None = None) -> None:
    """Refuse the image unless its signature and, with ``sbom``, its SBOM attestation verify and match.

    cosign checks that a signature names the digest; it does not fetch the manifest. The manifest the
    registry serves for that digest is therefore hashed here too: bytes changed in the registry's storage
    are refused before a node would refuse to pull them."""
    name, _, digest = image.partition("@")
    if digest:
        served = registry_digest(image, signing.insecure_registry)
        if served != digest:
            raise ReleaseError(f"{image}: the registry serves a manifest whose sha256 is {served}, not the signed digest")
    cosign("verify signature", image, "verify", *signing.verify_args, image)
    if sbom is None:
        return
    expected = json.loads(sbom.read_text(encoding="utf-8"))
    if expected in attested_sboms(image, signing):
        return
    raise ReleaseError(f"{image}: no verified CycloneDX attestation carries the SBOM built with the image ({sbom})")


def attested_sboms(image: str, signing: Verifier) -> list[dict]:
    """The CycloneDX documents of the image's attestations that verify against ``signing`` (cosign refuses,
    and this raises, when none does)."""
    attested = cosign("verify SBOM attestation", image, "verify-attestation", "--type", "cyclonedx", *signing.verify_args, image)
    found = []
    for line in attested.stdout.splitlines():
        statement = json.loads(base64.b64decode(json.loads(line)["payload"]))
        if statement.get("predicateType") == SBOM_PREDICATE:
            found.append(statement.get("predicate"))
    return found


def attestation_reference(image: str, insecure: bool) -> str:
    """Where cosign stored the attestation (a ``sha256-<hex>.att`` tag: docker-registry 2.8 has no referrers API)."""
    args = ["--allow-insecure-registry"] if insecure else []
    return cosign("locate attestation", image, "triangulate", "--type", "attestation", *args, image).stdout.strip()


def write_apps(lock: Path, entries: dict[str, dict[str, Any]]) -> None:
    """Replace the lock's ``apps`` section (the last one; its header comment is kept) with ``entries``
    merged over the entries already pinned; the result must load in the catalog or nothing is written."""
    text = lock.read_text(encoding="utf-8")
    document = catalog.read_document(text) or {}
    apps = {**(document.get("apps") or {}), **entries}
    head, marker, _ = text.partition("\napps:")
    if not marker:
        raise ReleaseError(f"{lock}: has no top-level 'apps:' section to write the first-party images into")
    body = yaml.safe_dump({"apps": dict(sorted(apps.items()))}, sort_keys=False, default_flow_style=False, width=120)
    new = head + "\n" + body
    catalog.parse(catalog.read_document(new))  # raises CatalogError naming the entry
    tmp = lock.with_suffix(".tmp")
    tmp.write_text(new, encoding="utf-8")
    tmp.replace(lock)


def release_app(built: dict[str, Any], registry: str, signing: Signing) -> dict[str, Any]:
    """Push, check, sign, attest and verify one built app; returns its catalog entry."""
    if not re.fullmatch(r"[0-9a-f]{40}", built.get("git_commit", "")):
        raise ReleaseError(f"{built['app']}: built from {built.get('git_commit') or 'an unknown commit'}; only a build of a "
                           "committed tree is promoted (commit, then `make images` again)")
    host, _, path = registry.partition("/")
    repository = f"{path}/{built['app']}" if path else built["app"]
    tagged = f"{host}/{repository}:{built['version']}"
    push(Path(built["layout"]), built["version"], tagged, signing.insecure_registry)
    digest = registry_digest(tagged, signing.insecure_registry)
    if digest != built["digest"]:
        raise ReleaseError(f"{tagged}: the registry serves {digest}, the build produced {built['digest']}; not promoted")
    image = f"{host}/{repository}@{digest}"
    sign_and_attest(image, Path(built["sbom"]), signing)
    verify(image, signing, Path(built["sbom"]))
    return {
        "registry": host, "repository": repository, "tag": built["version"], "digest": digest,
        "source": f"built by tools/images (make images) from git commit {built['git_commit']}, SOURCE_DATE_EPOCH="
                  f"{built['source_date_epoch']}; pushed, signed, attested and verified by `make images-release`",
        "signer": signing.signer(),
        "sbom": {"format": "CycloneDX JSON", "predicate_type": SBOM_PREDICATE, "digest": built["sbom_digest"],
                 "attestation": attestation_reference(image, signing.insecure_registry)},
    }


def main(args) -> int:
    built = sorted(Path(args.out).glob("*/build.json"))
    if not built:
        print(f"nothing built under {args.out}: run `make images` first", file=sys.stderr)
        return 1
    try:
        signing = Signing(key=args.key or "", public_key=args.public_key or "", identity=args.identity or "",
                          issuer=args.issuer or "", insecure_registry=args.insecure_registry)
        entries = {}
        for path in built:
            record = json.loads(path.read_text(encoding="utf-8"))
            entries[record["app"]] = release_app(record, args.registry, signing)
            print(f"{record['app']}: {args.registry}/{record['app']}@{record['digest']} signed, SBOM attested, verified")
        write_apps(Path(args.lock), entries)
    except (ReleaseError, catalog.CatalogError) as error:
        print(error, file=sys.stderr)
        return 1
    print(f"pinned {', '.join(sorted(entries))} in {args.lock} (apps)")
    return 0
