"""SBOM inventory: where every catalog image's SBOM lives, and which images contain a package.

``inventory`` is generated, never written by hand: one entry per catalog image (third-party ``images``,
first-party ``apps``) saying where **our** SBOM is — the CycloneDX attestation the mirror (third-party) or the
release pipeline (first-party) attached to the digest in the platform registry, when the mirror report says
it is there — and where the **upstream's** is, from the per-project research in tools/ops/upstream_sboms.yaml
(``none published`` when the upstream documents none).
``fetch`` verifies and downloads our attestations (``cosign verify-attestation`` against the key or identity
the image was signed with) into a local cache, and with ``--upstream`` the upstream SBOMs the inventory lists
(BuildKit SBOM attestations read from the pinned index; cosign SPDX attestations verified against the catalog
signer); ``find`` answers "which images contain package X (at version
Y)" from that cache and the first-party SBOMs ``make images`` wrote under build/images/<app>/, matching
CycloneDX components and SPDX packages by name, purl name or whole purl, and version.
"""
from __future__ import annotations

import argparse
import base64
import dataclasses
import json
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterator

import yaml

from components import catalog
from tools.images import release
from tools.images.release import ReleaseError, Trust
from tools.mirror.report import Report
from tools.ops.registry import Registry, RegistryError

UPSTREAM_FILE = Path(__file__).with_name("upstream_sboms.yaml")
NONE_PUBLISHED = "none published"


@dataclass(frozen=True)
class Upstream:
    kind: str
    format: str = ""
    fetch: str = ""
    source: str = ""


@dataclass(frozen=True)
class Entry:
    """Where one image's SBOMs live. ``ours`` is the platform registry reference carrying our attestation
    (empty when it is not there yet, ``ours_note`` says why)."""

    key: str
    section: str
    image: str
    ours: str
    ours_note: str
    ours_fetch: str
    attestation: str
    """Where cosign stores the attestation on a registry without the referrers API (``cosign triangulate``)."""
    upstream: Upstream


def upstream_projects(path: Path = UPSTREAM_FILE) -> list[dict]:
    projects = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("projects") or []
    for number, project in enumerate(projects):
        missing = [f for f in ("match", "kind", "source") if not project.get(f)]
        if missing:
            raise ValueError(f"{path}: projects[{number}] lacks {', '.join(missing)}")
    return projects


def _upstream(image: catalog.Image, projects: list[dict]) -> Upstream:
    name = f"{image.registry}/{image.repository}"
    for project in projects:
        if name == project["match"]:
            fetch = project.get("fetch", "").format(image=f"{name}@{image.digest}", tag=image.tag)
            return Upstream(kind=project["kind"], format=project.get("format", ""), fetch=" ".join(fetch.split()),
                            source=" ".join(project["source"].split()))
    return Upstream(kind=NONE_PUBLISHED, source=f"searched; see {UPSTREAM_FILE.name}")


def _verify_args(trust_args: str) -> str:
    return f"cosign verify-attestation --type cyclonedx {trust_args}"


def inventory(cat: catalog.Catalog, registry: str, report: Report | None, key_hint: str = "<platform.pub>",
              projects: list[dict] | None = None) -> list[Entry]:
    """Every catalog image with where its SBOMs live, for a stack pulling from ``registry``."""
    projects = upstream_projects() if projects is None else projects
    entries = []
    for key, image in sorted(cat.images.items()):
        target = f"{registry}/{image.repository}"
        ref = f"{target}@{image.digest}"
        mirrored = report is not None and report.registry == registry and report.signed(target, image.digest)
        if mirrored:
            origin = report.entries[key].sbom if key in report.entries else ""
            note = f"attested by the mirror ({origin or 'see the mirror report'})"
        elif report is None:
            note = f"no mirror report: `make mirror STACK=prod` attests it at {ref}"
        else:
            state = report.entries[key].state if key in report.entries else "absent"
            note = f"not in the platform registry yet (mirror report: {state}); `make mirror` attests it at {ref}"
        entries.append(Entry(key=key, section="images", image=f"{image.registry}/{image.repository}:{image.tag}@{image.digest}",
                             ours=ref if mirrored else "", ours_note=note,
                             ours_fetch=_verify_args(f"--key {key_hint} {ref}"),
                             attestation=f"{target}:{image.digest.replace(':', '-')}.att", upstream=_upstream(image, projects)))
    for key, app in sorted(cat.apps.items()):
        ref = f"{app.registry}/{app.repository}@{app.digest}"
        trust = (f"--key {key_hint}" if app.signer.kind == "platform"
                 else f"--certificate-identity {app.signer.subject} --certificate-oidc-issuer {app.signer.issuer}")
        entries.append(Entry(key=key, section="apps", image=f"{app.registry}/{app.repository}:{app.tag}@{app.digest}",
                             ours=ref, ours_note=f"attested by the release pipeline ({app.sbom.attestation}, SBOM {app.sbom.digest})",
                             ours_fetch=_verify_args(f"{trust} {ref}"), attestation=app.sbom.attestation,
                             upstream=Upstream(kind="first-party", source="built here: ours is the only SBOM")))
    return entries


def cache_name(entry: Entry) -> str:
    return f"{entry.section}-{entry.key}.json"


def fetch(entries: list[Entry], cat: catalog.Catalog, platform_trust: Trust, cache: Path,
          log: Callable[[str], None] = print) -> list[str]:
    """Verify and download our attestation of every entry that has one; returns the failures (one line each).

    The cache holds one release: what an earlier fetch left (another digest, an image since removed) is
    dropped first, so `find` never answers from an SBOM of an image no longer pinned."""
    cache.mkdir(parents=True, exist_ok=True)
    for stale in cache.glob("*.json"):
        stale.unlink()
    failures = []
    for entry in entries:
        if not entry.ours:
            log(f"SKIPPED  {entry.key}: {entry.ours_note}")
            continue
        keyless_app = (Trust.upstream_of(cat.apps[entry.key].signer, platform_trust.insecure_registry)
                       if entry.section == "apps" else None)
        trust = keyless_app or platform_trust
        try:
            documents = release.attested_sboms(entry.ours, trust)
        except ReleaseError as error:
            failures.append(f"{entry.key}: {error}")
            log(f"FAILED   {entry.key}: {error}")
            continue
        if not documents:
            failures.append(f"{entry.key}: {entry.ours} carries no CycloneDX attestation")
            log(f"FAILED   {failures[-1]}")
            continue
        record = {"key": entry.key, "section": entry.section, "image": entry.ours, "sboms": documents}
        (cache / cache_name(entry)).write_text(json.dumps(record, sort_keys=True) + "\n", encoding="utf-8")
        log(f"FETCHED  {entry.key}: {entry.ours} ({sum(len(list(packages(d))) for d in documents)} packages)")
    return failures


IN_TOTO_LAYER = "application/vnd.in-toto+json"
SBOM_PREDICATES = ("https://spdx.dev/Document", catalog.SBOM_PREDICATE)


def buildkit_sboms(registry: Registry, repository: str, digest: str) -> list[dict]:
    """The SBOM predicates of BuildKit's attestation manifests inside the index ``digest`` (one per platform).

    They are part of the pinned index, so the digest pin covers them; nothing else signs them."""
    documents = []
    for entry in registry.manifest(repository, digest).get("manifests") or []:
        if (entry.get("annotations") or {}).get("vnd.docker.reference.type") != "attestation-manifest":
            continue
        for layer in registry.manifest(repository, entry["digest"]).get("layers") or []:
            declared = (layer.get("annotations") or {}).get("in-toto.io/predicate-type", "")
            if layer.get("mediaType") != IN_TOTO_LAYER or (declared and declared not in SBOM_PREDICATES):
                continue
            statement = json.loads(registry.blob(repository, layer["digest"]))
            if statement.get("predicateType") in SBOM_PREDICATES:
                documents.append(statement.get("predicate") or {})
    return documents


def cosign_spdx_sboms(image: str, trust: Trust) -> list[dict]:
    """The SPDX documents of the image's ``cosign attest --type spdx`` attestations verifying against ``trust``."""
    attested = release.cosign("verify SPDX attestation", image, "verify-attestation", "--type", "spdx", *trust.verify_args, image)
    found = []
    for line in attested.stdout.splitlines():
        statement = json.loads(base64.b64decode(json.loads(line)["payload"]))
        if statement.get("predicateType") == "https://spdx.dev/Document":
            found.append(_spdx_document(statement.get("predicate") or {}))
    return found


def _catalog_trust(image: catalog.Image) -> Trust | None:
    return Trust.upstream_of(image.signer)


def fetch_upstream(entries: list[Entry], cat: catalog.Catalog, cache: Path, insecure_hosts: frozenset[str] = frozenset(),
                   trust_for: Callable[[catalog.Image], Trust | None] = _catalog_trust,
                   log: Callable[[str], None] = print) -> list[str]:
    """Cache the upstream SBOMs the inventory points to: BuildKit attestations read from the pinned index, and
    cosign SPDX attestations verified against the catalog signer (never trusted unverified). Failures returned."""
    cache.mkdir(parents=True, exist_ok=True)
    failures, registries = [], {}
    for entry in entries:
        if entry.section != "images" or entry.upstream.kind not in ("buildkit-attestation", "cosign-attestation"):
            continue
        image = cat.images[entry.key]
        reference = f"{image.registry}/{image.repository}@{image.digest}"
        try:
            if entry.upstream.kind == "buildkit-attestation":
                registry = registries.setdefault(image.registry, Registry(image.registry, insecure=image.registry in insecure_hosts))
                documents = buildkit_sboms(registry, image.repository, image.digest)
            else:
                trust = trust_for(image)
                if trust is None:
                    raise ReleaseError(f"{reference}: the catalog signer is platform; an upstream attestation cannot be verified")
                documents = cosign_spdx_sboms(reference, dataclasses.replace(trust, insecure_registry=image.registry in insecure_hosts))
        except (RegistryError, ReleaseError, ValueError) as error:
            failures.append(f"{entry.key}: {error}")
            log(f"FAILED   {entry.key} (upstream): {error}")
            continue
        if not documents:
            failures.append(f"{entry.key}: {reference} carries no {entry.upstream.kind}")
            log(f"FAILED   {failures[-1]}")
            continue
        record = {"key": entry.key, "section": "upstream", "image": f"{reference} (upstream {entry.upstream.kind})",
                  "sboms": documents}
        (cache / f"upstream-{entry.key}.json").write_text(json.dumps(record, sort_keys=True) + "\n", encoding="utf-8")
        log(f"FETCHED  {entry.key} (upstream {entry.upstream.kind}): {sum(len(list(packages(d))) for d in documents)} packages")
    return failures


@dataclass(frozen=True)
class Package:
    name: str
    version: str
    purl: str


def _spdx_document(document: dict | str) -> dict:
    """cosign's SPDX predicates carry the document as a JSON string: the predicate itself (cosign 2.x
    ``--type spdx``) or its ``Data`` field (older releases, as external-secrets' docs show)."""
    if isinstance(document, str):
        return json.loads(document)
    data = document.get("Data")
    return json.loads(data) if isinstance(data, str) else document


def packages(document: dict) -> Iterator[Package]:
    """The packages a CycloneDX (components, nested too) or SPDX (packages) document lists."""
    document = _spdx_document(document)
    if "spdxVersion" in document:
        for package in document.get("packages") or []:
            purl = next((r.get("referenceLocator", "") for r in package.get("externalRefs") or []
                         if r.get("referenceType") == "purl"), "")
            yield Package(package.get("name", ""), package.get("versionInfo", ""), purl)
        return
    stack = list(document.get("components") or [])
    while stack:
        component = stack.pop(0)
        yield Package(component.get("name", ""), component.get("version", ""), component.get("purl", ""))
        stack.extend(component.get("components") or [])


def _purl_name(purl: str) -> str:
    path = purl.split("?", 1)[0].split("#", 1)[0].rsplit("@", 1)[0]
    return path.rsplit("/", 1)[-1].lower()


def _purl_version(purl: str) -> str:
    from urllib.parse import unquote
    head = purl.split("?", 1)[0].split("#", 1)[0]
    return unquote(head.rsplit("@", 1)[1]) if "@" in head else ""


def matches(package: Package, name: str, version: str | None) -> bool:
    wanted = name.lower()
    if wanted.startswith("pkg:"):
        named = package.purl.lower().split("?", 1)[0].rsplit("@", 1)[0] == wanted.split("?", 1)[0].rsplit("@", 1)[0]
    else:
        named = package.name.lower() == wanted or (package.purl and _purl_name(package.purl) == wanted)
    return bool(named) and (version is None or version in (package.version, _purl_version(package.purl)))


@dataclass(frozen=True)
class Hit:
    key: str
    image: str
    package: Package
    where: str


def sbom_sources(cache: Path, builds: Path) -> Iterator[tuple[str, str, dict, str]]:
    """(key, image, document, where) for every cached attestation and every first-party build's SBOM."""
    for path in sorted(cache.glob("*.json")) if cache.is_dir() else ():
        record = json.loads(path.read_text(encoding="utf-8"))
        for document in record.get("sboms") or []:
            yield record["key"], record["image"], document, f"attestation, cached in {path}"
    for build in sorted(builds.glob("*/build.json")) if builds.is_dir() else ():
        record = json.loads(build.read_text(encoding="utf-8"))
        sbom = Path(record["sbom"])
        if sbom.is_file():
            yield (record["app"], f"{record['app']}:{record['version']}@{record['digest']} (local build)",
                   json.loads(sbom.read_text(encoding="utf-8")), f"build SBOM {sbom}")


def find(name: str, version: str | None, cache: Path, builds: Path) -> tuple[list[Hit], int]:
    """Every image (and its package) matching; and how many SBOM documents were searched."""
    hits, searched = [], 0
    for key, image, document, where in sbom_sources(cache, builds):
        searched += 1
        seen = set()
        for package in packages(document):
            if matches(package, name, version) and package not in seen:
                seen.add(package)
                hits.append(Hit(key, image, package, where))
    return hits, searched


def _stack(stack: str) -> tuple[str, str]:
    """(registry, platform public key PEM) of a stack pulling from the platform registry."""
    from tools.mirror.__main__ import stack_target
    registry, pem, kms = stack_target(stack)
    return registry, kms or pem


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.ops.sbom", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("inventory", "fetch"):
        command = sub.add_parser(name)
        command.add_argument("--stack", default="prod", help="the stack whose platform registry holds our SBOMs")
        command.add_argument("--report", default="build/mirror/report.json", help="the mirror report")
        command.add_argument("--out", default="build/sbom")
        if name == "fetch":
            command.add_argument("--insecure-registry", action="store_true")
            command.add_argument("--upstream", action="store_true",
                                 help="also cache the upstream SBOMs the inventory lists (BuildKit attestations, cosign SPDX)")
    f = sub.add_parser("find", help="which images contain a package (at a version)")
    f.add_argument("package", help="a package name, or a purl without version (pkg:deb/debian/openssl)")
    f.add_argument("--version")
    f.add_argument("--out", default="build/sbom", help="where `fetch` cached the attestations (<out>/cache)")
    f.add_argument("--builds", default="build/images", help="first-party builds (make images)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.command == "find":
        hits, searched = find(args.package, args.version, out / "cache", Path(args.builds))
        wanted = f"{args.package}{' ' + args.version if args.version else ''}"
        for hit in hits:
            print(f"{hit.key}\t{hit.image}\t{hit.package.name} {hit.package.version}\t{hit.package.purl}")
        if not hits:
            print(f"none: no image contains {wanted} ({searched} SBOMs searched"
                  f"{'' if searched else '; run `python -m tools.ops.sbom fetch --stack prod` and/or `make images`'})")
        return 0 if hits else 1
    try:
        registry, trusted = _stack(args.stack)
        entries = inventory(catalog.load(), registry, Report.load(Path(args.report)))
    except (ValueError, catalog.CatalogError) as error:
        print(f"sbom: {error}", file=sys.stderr)
        return 2
    out.mkdir(parents=True, exist_ok=True)
    (out / "inventory.json").write_text(json.dumps([asdict(e) for e in entries], indent=2) + "\n", encoding="utf-8")
    if args.command == "inventory":
        for entry in entries:
            print(f"{entry.key:30} ours: {entry.ours or '-'}  ({entry.ours_note})\n{'':30} upstream: {entry.upstream.kind}"
                  + (f" — {entry.upstream.source}" if entry.upstream.kind != NONE_PUBLISHED else ""))
        print(f"{out / 'inventory.json'}: {len(entries)} images, {sum(bool(e.ours) for e in entries)} with our SBOM attested")
        return 0
    with tempfile.NamedTemporaryFile("w", suffix=".pub", delete=False) as key_file:
        key_file.write(trusted)
    key = trusted if trusted.startswith(("awskms://", "gcpkms://", "azurekms://", "hashivault://")) else key_file.name
    failures = fetch(entries, catalog.load(), Trust(public_key=key, insecure_registry=args.insecure_registry), out / "cache")
    Path(key_file.name).unlink(missing_ok=True)
    present = sum(bool(e.ours) for e in entries)
    print(f"{out / 'cache'}: {present - len(failures)} SBOMs of ours fetched and verified, {len(failures)} failed, "
          f"{len(entries) - present} images without our attestation yet (see the SKIPPED lines)")
    if args.upstream:
        upstream_failures = fetch_upstream(entries, catalog.load(), out / "cache")
        print(f"upstream SBOMs: {len(upstream_failures)} failed")
        failures += upstream_failures
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
