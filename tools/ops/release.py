"""What a release is: the exact bytes a stack deploys, named by digest, and one id for the whole set.

Promotion moves a release from one stack to the next without rebuilding anything, so every stage
must be able to say which release it tested. The id is a digest over every catalog image, every
first-party app image and every vendored chart, in a canonical order: the same lock gives the same
id on any machine, and any changed digest gives another.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping

from components.catalog import Catalog


def release_digests(catalog: Catalog) -> dict[str, str]:
    """Every pinned artifact of the catalog: ``image/<key>``, ``app/<name>`` and ``chart/<key>`` to its digest."""
    digests = {f"image/{key}": image.digest for key, image in catalog.images.items()}
    digests.update({f"app/{name}": app.digest for name, app in catalog.apps.items()})
    digests.update({f"chart/{key}": chart.digest for key, chart in catalog.charts.items() if chart.digest})
    return dict(sorted(digests.items()))


def release_id(digests: Mapping[str, str]) -> str:
    """``sha256:<hex>`` over the canonical JSON of the digests (keys sorted, no whitespace)."""
    canonical = json.dumps(dict(sorted(digests.items())), separators=(",", ":"), sort_keys=True)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
