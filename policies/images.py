"""Image references: parse them, and decide whether one is a signed catalog image from an allowed registry.

Shared by the pod-template check and the Helm-values check of the digest-pinned-images rule, so an
image is judged the same way wherever the program names it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from .catalog import Catalog, CatalogImage

DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
REFERENCE_RE = re.compile(
    r"^[A-Za-z0-9][A-Za-z0-9._-]*(:[0-9]+)?(/[A-Za-z0-9._-]+)*"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[0-9a-fA-F]+)?$"
)
UPSTREAM = "upstream"
DOCKER_HUB = "docker.io"


@dataclass(frozen=True)
class ImageRef:
    """``name[:tag][@digest]`` with the registry made explicit (Docker Hub when omitted)."""

    name: str
    tag: str
    digest: str

    @classmethod
    def parse(cls, reference: str) -> ImageRef:
        rest, _, digest = reference.partition("@")
        slash = rest.rfind("/")
        colon = rest.rfind(":")
        name, tag = (rest[:colon], rest[colon + 1 :]) if colon > slash else (rest, "")
        return cls(_with_registry(name), tag, digest)


def _with_registry(name: str) -> str:
    first, _, remainder = name.partition("/")
    if remainder and ("." in first or ":" in first or first == "localhost"):
        return name
    if not remainder:
        return f"{DOCKER_HUB}/library/{name}"
    return f"{DOCKER_HUB}/{name}"


def looks_like_image(value: str) -> bool:
    """True for strings shaped like an image reference (used for ``image:`` keys in chart values)."""
    return bool(value) and REFERENCE_RE.match(value) is not None and ("/" in value or "@" in value or ":" in value)


def allowed_prefixes(entry: CatalogImage, allowed_registries: Sequence[str]) -> list[str]:
    """Registry prefixes the entry may be pulled from; ``upstream`` means the entry's own registry."""
    return [(entry.registry if prefix == UPSTREAM else prefix).rstrip("/") for prefix in allowed_registries]


def image_problem(reference: str, catalog: Catalog, allowed_registries: Sequence[str]) -> str | None:
    """None when ``reference`` is a signed, digest-pinned catalog image from an allowed registry."""
    ref = ImageRef.parse(reference)
    if not DIGEST_RE.match(ref.digest):
        return f"image '{reference}' is not pinned by digest (@sha256:<64 hex>)"
    entries = catalog.images_by_digest.get(ref.digest, ())
    if not entries:
        return f"image '{reference}' has a digest that is not in platform.lock.yaml"
    same_repo = [e for e in entries if ref.name.endswith(f"/{e.repository}")]
    if not same_repo:
        expected = ", ".join(sorted({e.repository for e in entries}))
        return f"image '{reference}' uses a catalog digest under another repository (catalog repository: {expected})"
    allowed = [
        e for e in same_repo if any(ref.name == f"{p}/{e.repository}" for p in allowed_prefixes(e, allowed_registries))
    ]
    if not allowed:
        registries = ", ".join(allowed_registries) or "none"
        return f"image '{reference}' is not pulled from an allowed registry (allowed: {registries})"
    entry = allowed[0]
    if ref.tag and entry.tag and ref.tag != entry.tag:
        return f"image '{reference}' tag '{ref.tag}' does not match catalog tag '{entry.tag}' for that digest"
    if entry.signer is None or not entry.signer.is_complete:
        return (
            f"image '{reference}' (catalog entry '{entry.key}') has no usable signer "
            "(keyless with issuer and subject, or platform)"
        )
    return None
