"""What the mirror copies: every third-party image of the catalog, with the trust its upstream signature
must meet and the CVE waivers granted for its digest.

First-party images (the lock's ``apps``) are not mirrored: the release pipeline pushes them into the
platform registry already signed with their SBOM attested (tools/images/release.py).
"""
from __future__ import annotations

from dataclasses import dataclass

from components import catalog
from components.cve_waivers import Waiver
from tools.images.release import Trust


@dataclass(frozen=True)
class MirrorItem:
    """One image to mirror: ``source`` is the upstream ``registry/repository``.

    ``upstream`` is what the upstream signature must verify against, or None when the catalog's signer is
    ``platform`` (the upstream publishes no signature; the platform key is the first signature it gets).
    """

    key: str
    source: str
    repository: str
    tag: str
    digest: str
    upstream: Trust | None
    waivers: tuple[Waiver, ...] = ()

    @property
    def source_ref(self) -> str:
        return f"{self.source}@{self.digest}"

    def target_name(self, registry: str) -> str:
        return f"{registry}/{self.repository}"

    def target_ref(self, registry: str) -> str:
        return f"{self.target_name(registry)}@{self.digest}"

    def upstream_signature(self) -> str:
        return f"verified against {self.upstream.describe()}" if self.upstream else "none: the upstream publishes no signature (catalog signer: platform)"


def items_from_catalog(cat: catalog.Catalog, only: frozenset[str] = frozenset()) -> list[MirrorItem]:
    """The catalog's images in key order (or just ``only``); a keyless signer becomes an identity to verify."""
    return [MirrorItem(key=key, source=f"{image.registry}/{image.repository}", repository=image.repository, tag=image.tag,
                       digest=image.digest, upstream=Trust.upstream_of(image.signer), waivers=image.waivers)
            for key, image in cat.selected("images", only)]
