"""Catalog images written the way each chart spells its image values.

Every chart names the parts of an image differently; the lock file records which keys each
chart reads (comments on its chart entry). The helpers here only rearrange the catalog's
``ImageRef``; no tag or digest is ever written by hand.
"""
from __future__ import annotations

from components.catalog import ImageRef


def registry_repository_tag_sha(image: ImageRef) -> dict[str, str]:
    """kube-prometheus-stack and grafana: ``sha`` is the hex alone, the templates add ``@sha256:``."""
    return {"registry": image.registry, "repository": image.repository, "tag": image.tag, "sha": image.digest.removeprefix("sha256:")}


def registry_repository_tag_full_sha(image: ImageRef) -> dict[str, str]:
    """kube-state-metrics (a kube-prometheus-stack subchart): ``sha`` takes the whole ``sha256:<hex>``."""
    return {"registry": image.registry, "repository": image.repository, "tag": image.tag, "sha": image.digest}


def registry_repository_tag_digest(image: ImageRef) -> dict[str, str]:
    """loki: a separate ``digest`` key that overrides the tag."""
    return {"registry": image.registry, "repository": image.repository, "tag": image.tag, "digest": image.digest}


def repository_tag_digest(image: ImageRef) -> dict[str, str]:
    """opentelemetry-collector: no registry key, so the repository carries it; digest wins over tag."""
    return {"repository": image.name, "tag": image.tag, "digest": image.digest}


def registry_repository_tag_at_digest(image: ImageRef) -> dict[str, str]:
    """tempo: no digest key, so the digest rides in the tag (``3.1.0@sha256:...``)."""
    return {"registry": image.registry, "repository": image.repository, "tag": image.tag_at_digest}
