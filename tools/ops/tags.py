"""Release tags as upstreams write them, and which of them an update policy lets the refresh propose.

A tag is read as ``<prefix><v?><numbers><variant>``: ``v1.21.1``, ``8.2.3-alpine``, ``distroless-v1.38.3``,
``v3.15.0-distroless``, ``17.8-202602201511-system-trixie``, ``1.2.0-kafka-4.3.1``, ``26.3.33.24``,
``argo-cd-10.1.1`` (a chart's Git tag). A candidate belongs to the same line as the pinned tag only when its
prefix, ``v`` and variant are the same text — except runs of 8 or more digits in the variant (build stamps
such as ``202602201511``), which may differ and count as a rebuild of the same release, newer when larger.
So ``-alpine`` never becomes ``-bookworm`` and ``-kafka-4.3.1`` never becomes ``-kafka-4.4.0`` by itself.
Pre-releases (rc, alpha, beta, dev, snapshot, nightly, pre, preview) are never candidates. A tag that does
not read this way (``RELEASE.2025-09-07T16-13-09Z``) is only checked for a moved digest.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from components.catalog import UPDATE_POLICIES

_TAG = re.compile(r"^(?P<prefix>(?:[A-Za-z][A-Za-z0-9]*-)*)(?P<v>v?)(?P<numbers>\d+(?:\.\d+){1,3})(?P<variant>(?:[-_+].*)?)$")
_PRERELEASE = re.compile(r"(?i)(?:^|[-_.+])(rc|alpha|beta|dev|snapshot|nightly|pre|preview|canary|next)[-_.]?\d*(?=$|[-_.+])")
_STAMP = re.compile(r"\d{8,}")


@dataclass(frozen=True, order=True)
class Release:
    """A parsed release tag: ``numbers`` (major, minor, patch[, build]) and the stamps of its variant."""

    numbers: tuple[int, ...]
    stamps: tuple[int, ...]
    tag: str
    line: str
    """prefix, ``v``, and variant with its stamps blanked: tags of the same line are comparable."""

    @property
    def prerelease(self) -> bool:
        return bool(_PRERELEASE.search(self.line.split("#", 1)[-1]))

    def level(self, newer: "Release") -> str:
        """The smallest policy that allows moving from this release to ``newer``: patch, minor or major."""
        a, b = _padded(self.numbers), _padded(newer.numbers)
        if a[0] != b[0]:
            return "major"
        if a[1] != b[1]:
            return "minor"
        return "patch"


def _padded(numbers: tuple[int, ...]) -> tuple[int, ...]:
    return (*numbers, *([0] * (4 - len(numbers))))


def parse(tag: str) -> Release | None:
    """The release a tag names, or None when the tag does not read as ``<prefix><v?><numbers><variant>``."""
    match = _TAG.match(tag)
    if not match:
        return None
    variant = match["variant"]
    line = f"{match['prefix']}{match['v']}#{_STAMP.sub('<stamp>', variant)}"
    return Release(numbers=tuple(int(n) for n in match["numbers"].split(".")),
                   stamps=tuple(int(s) for s in _STAMP.findall(variant)), tag=tag, line=line)


def allowed(policy: str, current: Release, candidate: Release) -> bool:
    """Whether ``policy`` lets the refresh propose ``candidate`` in place of ``current``."""
    if policy not in UPDATE_POLICIES:
        raise ValueError(f"update policy must be one of {', '.join(UPDATE_POLICIES)}, got {policy!r}")
    if policy == "none" or candidate.line != current.line or candidate.prerelease:
        return False
    if (_padded(candidate.numbers), candidate.stamps) <= (_padded(current.numbers), current.stamps):
        return False
    return current.level(candidate) in {"patch": ("patch",), "minor": ("patch", "minor")}[policy]


@dataclass(frozen=True)
class Candidates:
    """What the tags of a repository offer a pinned tag under a policy."""

    newest: Release | None
    """The newest release the policy allows (None: nothing newer within the policy)."""
    beyond_policy: tuple[str, ...]
    """Newer releases of the same line that the policy does not allow (a human's decision), newest first."""


def candidates(pinned: str, tags: list[str], policy: str) -> Candidates:
    """The newest allowed release of ``pinned``'s line among ``tags``, and the newer ones the policy holds back."""
    current = parse(pinned)
    if current is None:
        return Candidates(None, ())
    same_line = [r for r in (parse(t) for t in tags) if r and r.line == current.line and not r.prerelease]
    newer = [r for r in same_line if (_padded(r.numbers), r.stamps) > (_padded(current.numbers), current.stamps)]
    within = [r for r in newer if allowed(policy, current, r)]
    beyond = sorted((r for r in newer if r not in within), key=lambda r: (_padded(r.numbers), r.stamps), reverse=True)
    newest = max(within, key=lambda r: (_padded(r.numbers), r.stamps), default=None)
    return Candidates(newest, tuple(r.tag for r in beyond))
