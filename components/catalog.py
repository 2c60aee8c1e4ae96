"""The catalog: every chart and image the platform runs, pinned, with where each pin was read.

`platform.lock.yaml` is the single list of third-party artefacts. Code never writes an image
reference or a chart version itself; it asks the catalog by key (``catalog.image("vault")``),
and the catalog writes the reference for the stack's registry: upstream in dev, the platform
registry in prod, always the same digest (the platform copy is byte-identical and re-signed).

First-party images (the services under apps/) are in the ``apps`` section, written only by the release
pipeline (``python -m tools.images release``) with the digest it built, signed and verified, the SBOM
attestation beside it, and the signer; code reads them with ``catalog.app_image("identity")``. They are
pushed to the platform registry by the pipeline, so every stack pulls them from the registry pinned there.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

import yaml

from components.cve_waivers import Waiver, parse_waivers

PROJECT_ROOT = Path(__file__).resolve().parent.parent
LOCK_FILE = PROJECT_ROOT / "platform.lock.yaml"
VENDOR_ROOT = PROJECT_ROOT / "charts"
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
SEMVER = re.compile(r"^v?[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$")
KEY = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
CHART_REPO = re.compile(r"^(https|oci)://[^\s]+$")
SOURCE_LOCATION = re.compile(r"(https?://|github\.com/|gitlab\.com/|find_string id|registry \S+ \d{4}-\d{2}-\d{2})")
FLOATING_TAGS = {"latest", "stable", "main", "master", "edge", "nightly"}
UPDATE_POLICIES = ("none", "patch", "minor")
"""How far the refresh (python -m tools.ops.refresh) may move a pin on its own: ``none`` (only report a
moved tag), ``patch`` (same major.minor), ``minor`` (same major). A major release is always a human's change."""
DEFAULT_UPDATE = "patch"


class CatalogError(ValueError):
    """The lock file is unusable; every problem is listed with its entry."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("platform.lock.yaml is invalid:\n" + "\n".join(f"  - {p}" for p in problems))


@dataclass(frozen=True)
class Signer:
    """Who signed an image: an upstream keyless identity, or the platform's own key."""

    kind: str
    issuer: str = ""
    subject: str = ""
    source: str = ""


@dataclass(frozen=True)
class ImageRef:
    """An image as a stack pulls it: split the way Helm charts ask for it."""

    registry: str
    repository: str
    tag: str
    digest: str

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    @property
    def tag_at_digest(self) -> str:
        """For charts that only have a ``tag`` value: ``1.2.3@sha256:...`` still pins the digest."""
        return f"{self.tag}@{self.digest}"

    @property
    def reference(self) -> str:
        return f"{self.name}:{self.tag}@{self.digest}"


@dataclass(frozen=True)
class Image:
    key: str
    registry: str
    repository: str
    tag: str
    digest: str
    source: str
    signer: Signer
    waivers: tuple[Waiver, ...] = field(default=(), kw_only=True)
    """Critical findings the mirror accepts for this digest, each with a reason and an expiry date."""
    update: str = field(default=DEFAULT_UPDATE, kw_only=True)
    """The refresh's update policy for this image (UPDATE_POLICIES)."""

    def pulled_from(self, registry_setting: str) -> ImageRef:
        """Where a stack pulls this image: upstream, or ``<platform registry>/<repository>``."""
        registry = self.registry if registry_setting == "upstream" else registry_setting
        return ImageRef(registry=registry, repository=self.repository, tag=self.tag, digest=self.digest)


@dataclass(frozen=True)
class Sbom:
    """The image's CycloneDX SBOM: attached as a signed attestation, identified by the document's digest."""

    format: str
    predicate_type: str
    digest: str
    attestation: str


@dataclass(frozen=True)
class AppImage(Image):
    """A first-party image as the release pipeline pinned it: an image of the catalog, with its attested SBOM."""

    sbom: Sbom

    @property
    def ref(self) -> ImageRef:
        return ImageRef(registry=self.registry, repository=self.repository, tag=self.tag, digest=self.digest)


class AppImageMissing(LookupError):
    """Code asked for an app whose image the release pipeline has not pinned."""


@dataclass(frozen=True)
class Chart:
    """A chart as published (repository, name, version) and as vendored here (``path``, ``digest``).

    The program deploys from ``path``, so the bytes checked offline are the bytes deployed;
    ``repository`` says where the same release is published, for readers and for refreshes.
    """

    key: str
    repository: str
    chart: str
    version: str
    source: str
    path: str = ""
    digest: str = ""
    update: str = DEFAULT_UPDATE
    """The refresh's update policy for this chart (UPDATE_POLICIES)."""

    @property
    def folder(self) -> Path:
        return PROJECT_ROOT / self.path


@dataclass(frozen=True)
class Catalog:
    """The loaded lock file, bound to the registry the stack pulls from."""

    images: Mapping[str, Image]
    charts: Mapping[str, Chart]
    registry: str = "upstream"
    apps: Mapping[str, AppImage] = field(default_factory=dict)

    def image(self, key: str) -> ImageRef:
        if key not in self.images:
            raise KeyError(f"image '{key}' is not in platform.lock.yaml; add it with its digest, source and signer")
        return self.images[key].pulled_from(self.registry)

    def chart(self, key: str) -> Chart:
        if key not in self.charts:
            raise KeyError(f"chart '{key}' is not in platform.lock.yaml; add it with its exact version and source")
        return self.charts[key]

    def app_image(self, name: str) -> ImageRef:
        """The pinned image of the service ``apps/<name>``, from the registry the pipeline pushed it to."""
        if name not in self.apps:
            pinned = ", ".join(sorted(self.apps)) or "none yet"
            raise AppImageMissing(f"app '{name}' has no image in platform.lock.yaml 'apps' (pinned: {pinned}); "
                                  f"build, sign and pin it with `make images-release` (docs/apps.md)")
        return self.apps[name].ref

    def selected(self, section: Literal["images", "charts"], only: frozenset[str] = frozenset()) -> list[tuple[str, Any]]:
        """The ``images`` or ``charts`` entries in key order, or just those named in ``only`` (a tool's
        ``--only``); a name the lock does not hold is an error naming it, never an empty run."""
        entries = getattr(self, section)
        unknown = sorted(only - set(entries))
        if unknown:
            raise KeyError(f"not in platform.lock.yaml {section}: {', '.join(unknown)}")
        return [(key, entry) for key, entry in sorted(entries.items()) if not only or key in only]

    def for_registry(self, registry: str) -> "Catalog":
        return Catalog(images=self.images, charts=self.charts, registry=registry, apps=self.apps)


def _text(entry: Mapping[str, Any], field: str, where: str, problems: list[str]) -> str:
    value = entry.get(field)
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{where}: '{field}' is missing or empty")
        return ""
    return value


def _synthetic(digest: str) -> bool:
    """Digests made up by hand tend to repeat: refuse any with a run of 8 equal characters."""
    hexpart = digest.removeprefix("sha256:")
    return re.search(r"(.)\1{7,}", hexpart) is not None or len(set(hexpart)) < 10


def _signer(raw: Any, where: str, problems: list[str]) -> Signer:
    if not isinstance(raw, Mapping):
        problems.append(f"{where}: 'signer' is missing (keyless identity or platform)")
        return Signer(kind="")
    kind = raw.get("kind")
    if kind == "platform":
        return Signer(kind="platform")
    if kind == "keyless":
        fields = {f: _text(raw, f, f"{where}.signer", problems) for f in ("issuer", "subject", "source")}
        return Signer(kind="keyless", **fields)
    problems.append(f"{where}.signer: kind must be 'keyless' or 'platform', got {kind!r}")
    return Signer(kind="")


APP_SOURCE = re.compile(r"\bgit commit [0-9a-f]{40}\b")


def _image(key: str, raw: Mapping[str, Any], problems: list[str], section: str = "images") -> Image:
    where = f"{section}.{key}"
    fields = {f: _text(raw, f, where, problems) for f in ("registry", "repository", "tag", "digest", "source")}
    if fields["tag"] in FLOATING_TAGS:
        problems.append(f"{where}: tag '{fields['tag']}' floats; pin a release tag")
    if fields["digest"] and not DIGEST.match(fields["digest"]):
        problems.append(f"{where}: digest must be sha256:<64 lower-case hex>, got {fields['digest']!r}")
    elif fields["digest"] and _synthetic(fields["digest"]):
        problems.append(f"{where}: digest {fields['digest']} looks synthetic; copy a real one from its source")
    if section == "apps":
        if fields["source"] and not APP_SOURCE.search(fields["source"]):
            problems.append(f"{where}: source must name the git commit the image was built from ('git commit <40 hex>')")
    elif fields["source"] and not SOURCE_LOCATION.search(fields["source"]):
        problems.append(f"{where}: source must name where the digest was read (a URL, a repository file, an index id)")
    waivers, waiver_problems = parse_waivers(raw.get("waivers"), f"{where}.waivers")
    problems.extend(waiver_problems)
    if section == "apps" and waivers:
        problems.append(f"{where}.waivers: first-party findings are waived in tools/images/waivers.yaml (the release gate)")
    return Image(key=key, signer=_signer(raw.get("signer"), where, problems), waivers=tuple(waivers),
                 update=_update(raw, where, problems), **fields)


def _update(raw: Mapping[str, Any], where: str, problems: list[str]) -> str:
    value = raw.get("update", DEFAULT_UPDATE)
    if value not in UPDATE_POLICIES:
        problems.append(f"{where}: update must be one of {', '.join(UPDATE_POLICIES)} (default {DEFAULT_UPDATE}), got {value!r}")
        return DEFAULT_UPDATE
    return value


SBOM_PREDICATE = "https://cyclonedx.org/bom"


def _app(key: str, raw: Mapping[str, Any], problems: list[str]) -> AppImage:
    """An ``apps`` entry: the image fields of a third-party image plus the SBOM attestation."""
    image = _image(key, raw, problems, section="apps")
    where = f"apps.{key}"
    sbom_raw = raw.get("sbom")
    if not isinstance(sbom_raw, Mapping):
        problems.append(f"{where}: 'sbom' is missing (format, predicate_type, digest, attestation)")
        sbom_raw = {}
    sbom = Sbom(**{f: _text(sbom_raw, f, f"{where}.sbom", problems) if sbom_raw else ""
                   for f in ("format", "predicate_type", "digest", "attestation")})
    if sbom.digest and not DIGEST.match(sbom.digest):
        problems.append(f"{where}.sbom.digest must be sha256:<64 hex> (the SBOM document's digest), got {sbom.digest!r}")
    if sbom.predicate_type and sbom.predicate_type != SBOM_PREDICATE:
        problems.append(f"{where}.sbom.predicate_type must be {SBOM_PREDICATE} (cosign attest --type cyclonedx)")
    if sbom.attestation and image.digest and image.digest.replace(":", "-") not in sbom.attestation:
        problems.append(f"{where}.sbom.attestation must be the attestation of the image digest {image.digest}")
    return AppImage(key=key, registry=image.registry, repository=image.repository, tag=image.tag, digest=image.digest,
                    source=image.source, signer=image.signer, sbom=sbom)


def _vendored(key: str, raw: Any, problems: list[str]) -> tuple[str, str]:
    where = f"charts.{key}.vendored"
    if not isinstance(raw, Mapping):
        problems.append(f"{where} is missing: vendor the chart with `make vendor-chart NAME={key} ...`")
        return "", ""
    path, digest = raw.get("path"), raw.get("digest")
    upstream = raw.get("upstream")
    if not isinstance(path, str) or path != f"{VENDOR_ROOT.name}/{key}":
        problems.append(f"{where}.path must be {VENDOR_ROOT.name}/{key}, got {path!r}")
    if not isinstance(digest, str) or not DIGEST.match(digest):
        problems.append(f"{where}.digest must be sha256:<64 hex>, got {digest!r}")
    if not isinstance(upstream, Mapping) or not all(isinstance(upstream.get(f), str) and upstream.get(f) for f in ("git", "tag", "commit", "path")):
        problems.append(f"{where}.upstream must name git, tag, commit and path")
    elif not re.fullmatch(r"[0-9a-f]{40}", upstream["commit"]):
        problems.append(f"{where}.upstream.commit must be a full 40-hex commit, got {upstream['commit']!r}")
    if not isinstance(raw.get("packaging"), list) or not isinstance(raw.get("dependencies"), list):
        problems.append(f"{where}: 'packaging' and 'dependencies' must be lists (empty when none)")
    return str(path or ""), str(digest or "")


def _chart(key: str, raw: Mapping[str, Any], problems: list[str]) -> Chart:
    where = f"charts.{key}"
    fields = {f: _text(raw, f, where, problems) for f in ("repository", "chart", "version", "source")}
    fields["path"], fields["digest"] = _vendored(key, raw.get("vendored"), problems)
    if fields["version"] and not SEMVER.match(str(fields["version"])):
        problems.append(f"{where}: version must be an exact release such as 1.2.3, got {fields['version']!r}")
    if fields["source"] and not SOURCE_LOCATION.search(fields["source"]):
        problems.append(f"{where}: source must name where the version was read (a URL, a repository file)")
    if fields["repository"] and not CHART_REPO.match(fields["repository"]):
        problems.append(f"{where}: repository must be an https:// or oci:// URL, got {fields['repository']!r}")
    return Chart(key=key, update=_update(raw, where, problems), **fields)


def parse(document: Any) -> Catalog:
    """Validate a lock document; raise :class:`CatalogError` listing every problem."""
    problems: list[str] = []
    if not isinstance(document, Mapping):
        raise CatalogError(["the file must be a mapping with 'charts' and 'images'"])
    images: dict[str, Image] = {}
    charts: dict[str, Chart] = {}
    for section, build, into in (("images", _image, images), ("charts", _chart, charts)):
        entries = document.get(section)
        if not isinstance(entries, Mapping):
            problems.append(f"'{section}' must be a mapping of key to entry")
            continue
        for key, raw in entries.items():
            if not KEY.match(str(key)):
                problems.append(f"{section}.{key}: keys are lower-case words joined by dashes")
            if not isinstance(raw, Mapping):
                problems.append(f"{section}.{key}: entry must be a mapping")
                continue
            into[str(key)] = build(str(key), raw, problems)
    apps: dict[str, AppImage] = {}
    app_entries = document.get("apps") or {}
    if not isinstance(app_entries, Mapping):
        problems.append("'apps' must be a mapping of app name to its pinned image (written by the release pipeline)")
        app_entries = {}
    for key, raw in app_entries.items():
        if not KEY.match(str(key)):
            problems.append(f"apps.{key}: keys are the app folder names under apps/")
        if not isinstance(raw, Mapping):
            problems.append(f"apps.{key}: entry must be a mapping")
            continue
        apps[str(key)] = _app(str(key), raw, problems)
    seen: dict[tuple[str, str], str] = {}
    for image in images.values():
        ident = (image.repository, image.digest)
        if ident in seen:
            problems.append(f"images.{image.key}: same repository and digest as images.{seen[ident]}")
        seen[ident] = image.key
    if problems:
        raise CatalogError(problems)
    return Catalog(images=images, charts=charts, apps=apps)


class _StrictLoader(yaml.SafeLoader):
    """YAML keeps the last of two equal keys silently; a lock file must not."""


def _mapping_without_duplicates(loader: _StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    keys = [loader.construct_object(k) for k, _ in node.value]
    repeated = sorted({str(k) for k in keys if keys.count(k) > 1})
    if repeated:
        raise CatalogError([f"line {node.start_mark.line + 1}: key(s) {', '.join(repeated)} appear more than once"])
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping_without_duplicates)


def read_document(text: str) -> Any:
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass


def load_vendored_records(path: Path = LOCK_FILE) -> dict[str, dict[str, Any]]:
    """Each chart's ``vendored`` record with its version, as the vendoring tool wrote it."""
    charts = (read_document(Path(path).read_text(encoding="utf-8")) or {}).get("charts") or {}
    return {key: {**(raw.get("vendored") or {}), "version": str(raw.get("version"))} for key, raw in charts.items()}


def load(path: Path = LOCK_FILE, registry: str = "upstream") -> Catalog:
    """Read and validate the lock file, bound to the stack's registry setting."""
    return parse(read_document(Path(path).read_text(encoding="utf-8"))).for_registry(registry)
