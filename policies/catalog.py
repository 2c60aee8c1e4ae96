"""Read-only view of platform.lock.yaml, the list of charts and images the platform may run.

The pack reads the catalog itself rather than importing ``components.catalog`` so that the
gate stays independent of the program it judges; the file format is fixed in
docs/architecture/contracts.md.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CATALOG = "platform.lock.yaml"


class CatalogError(Exception):
    """The catalog file is missing or malformed; every image/chart check fails closed."""


@dataclass(frozen=True)
class Signer:
    kind: str
    issuer: str = ""
    subject: str = ""

    @property
    def is_complete(self) -> bool:
        """keyless needs issuer and subject; platform is the platform's own key."""
        if self.kind == "platform":
            return True
        return self.kind == "keyless" and bool(self.issuer) and bool(self.subject)


@dataclass(frozen=True)
class CatalogImage:
    key: str
    registry: str
    repository: str
    tag: str
    digest: str
    signer: Signer | None


@dataclass(frozen=True)
class CatalogChart:
    key: str
    repository: str
    chart: str
    version: str
    path: str = ""
    """The vendored folder, relative to the repository root (``charts/<key>``)."""
    digest: str = ""
    """sha256 over the vendored folder's files (:func:`content_digest`)."""


@dataclass(frozen=True)
class Catalog:
    images: tuple[CatalogImage, ...]
    charts: tuple[CatalogChart, ...]

    @functools.cached_property
    def images_by_digest(self) -> dict[str, tuple[CatalogImage, ...]]:
        index: dict[str, list[CatalogImage]] = {}
        for image in self.images:
            index.setdefault(image.digest, []).append(image)
        return {digest: tuple(entries) for digest, entries in index.items()}

    @functools.cached_property
    def charts_by_path(self) -> dict[str, CatalogChart]:
        return {chart.path: chart for chart in self.charts if chart.path}


def normalise_repo_url(url: str) -> str:
    return url.rstrip("/")


def resolve_catalog_path(configured: str | None) -> Path:
    """A relative ``catalogPath`` is relative to the repository root, not the working directory."""
    path = Path(configured or DEFAULT_CATALOG)
    return path if path.is_absolute() else REPO_ROOT / path


def load_catalog(configured: str | None) -> Catalog:
    path = resolve_catalog_path(configured)
    try:
        stamp = path.stat().st_mtime_ns
    except OSError as error:
        raise CatalogError(f"catalog {path} cannot be read: {error.strerror}") from error
    return _load(path, stamp)


def catalog_or_problem(config: Any) -> tuple[Catalog | None, str | None]:
    """The rules' one way to the catalog their stack config names: (catalog, None), or (None, why not)
    when it cannot be read, which every rule reports as its violation."""
    try:
        return load_catalog(config.get("catalogPath")), None
    except CatalogError as error:
        return None, str(error)


@functools.lru_cache(maxsize=8)
def _load(path: Path, _stamp: int) -> Catalog:
    """Cached per file version: the engine calls a policy once per resource."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise CatalogError(f"catalog {path} cannot be parsed: {error}") from error
    if not isinstance(document, dict):
        raise CatalogError(f"catalog {path} is not a mapping")
    return Catalog(
        # first-party images (``apps``, written by the release pipeline) are images like any other to the rules
        images=tuple(_image(key, entry) for section in ("images", "apps") for key, entry in _section(document, section, path)),
        charts=tuple(_chart(key, entry) for key, entry in _section(document, "charts", path)),
    )


def _section(document: dict[str, Any], name: str, path: Path) -> list[tuple[str, dict[str, Any]]]:
    section = document.get(name) or {}
    if not isinstance(section, dict) or not all(isinstance(v, dict) for v in section.values()):
        raise CatalogError(f"catalog {path}: '{name}' must map keys to entries")
    return [(str(key), entry) for key, entry in section.items()]


def _text(entry: dict[str, Any], key: str) -> str:
    value = entry.get(key)
    return str(value) if value is not None else ""


def _image(key: str, entry: dict[str, Any]) -> CatalogImage:
    signer = entry.get("signer")
    return CatalogImage(
        key=key,
        registry=_text(entry, "registry"),
        repository=_text(entry, "repository"),
        tag=_text(entry, "tag"),
        digest=_text(entry, "digest"),
        signer=(
            Signer(_text(signer, "kind"), _text(signer, "issuer"), _text(signer, "subject"))
            if isinstance(signer, dict)
            else None
        ),
    )


def _chart(key: str, entry: dict[str, Any]) -> CatalogChart:
    vendored = entry.get("vendored") if isinstance(entry.get("vendored"), dict) else {}
    return CatalogChart(
        key=key,
        repository=normalise_repo_url(_text(entry, "repository")),
        chart=_text(entry, "chart"),
        version=_text(entry, "version"),
        path=_text(vendored, "path").strip("/"),
        digest=_text(vendored, "digest"),
    )


def content_digest(folder: Path) -> str:
    """sha256 over every file of a vendored chart: its path, a NUL, its bytes' sha256, a newline.

    The vendoring tool writes it into the catalog; pinned-charts and the tests recompute it, so
    a changed, added or removed file shows as drift.
    """
    listing = hashlib.sha256()
    for path in sorted(p for p in Path(folder).rglob("*") if p.is_file()):
        relative = path.relative_to(folder).as_posix()
        listing.update(f"{relative}\0{hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    return f"sha256:{listing.hexdigest()}"


@functools.lru_cache(maxsize=64)
def vendored_digest(folder: Path, _stamp: tuple[int, int]) -> str:
    """:func:`content_digest`, cached per folder state (the engine calls a policy once per resource)."""
    return content_digest(folder)


def folder_stamp(folder: Path) -> tuple[int, int]:
    """A cheap fingerprint of a folder's state: file count and newest modification time."""
    stats = [p.stat() for p in Path(folder).rglob("*") if p.is_file()]
    return len(stats), max((s.st_mtime_ns for s in stats), default=0)
