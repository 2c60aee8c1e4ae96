"""How sigstore policy-controller decides which ClusterImagePolicy covers an image (v0.13.1).

policy-controller matches each policy glob against go-containerregistry's ``Reference.Name()`` of the
image (pkg/apis/glob/glob.go ``Match``), which for ``repo:tag@sha256:..`` drops the tag, writes Docker
Hub as ``index.docker.io`` and adds ``library/`` to its one-part names (go-containerregistry v0.20.3,
pkg/name/digest.go ``NewDigest``, registry.go, repository.go). ``**`` matches anything, ``*`` anything
but ``/``. components/mesh/signatures/policies.py writes the globs the same way (the program and the
pack do not import each other; tests/mesh/test_image_signatures.py checks that they agree).
"""

from __future__ import annotations

import re

DOCKER_HUB = "index.docker.io"
VALID_GLOB = re.compile(r"^[a-zA-Z0-9\-_:/*.@]+$")


def admission_name(reference: str) -> str:
    rest, _, digest = reference.partition("@")
    slash, colon = rest.rfind("/"), rest.rfind(":")
    name = rest[:colon] if colon > slash else rest
    first, _, remainder = name.partition("/")
    if not remainder or not ("." in first or ":" in first or first == "localhost"):
        first, remainder = DOCKER_HUB, name
    if first == "docker.io":
        first = DOCKER_HUB
    if first == DOCKER_HUB and "/" not in remainder:
        remainder = f"library/{remainder}"
    return f"{first}/{remainder}@{digest}" if digest else f"{first}/{remainder}"


def glob_matches(glob: str, reference: str) -> bool:
    if glob == "*/*":
        glob = "index.docker.io/*/*"
    if glob == "*":
        glob = "index.docker.io/library/*"
    if not VALID_GLOB.match(glob):
        return False
    pattern = glob.replace(".", r"\.").replace("**", "#").replace("*", "[^/]*").replace("#", ".*")
    return re.match(f"^{pattern}$", admission_name(reference)) is not None
