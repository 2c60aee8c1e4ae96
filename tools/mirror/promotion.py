"""Promotion's supply-chain check: prod may only pull what the mirror copied, scanned and signed, with the
key prod's admission trusts.

Reads a rendered stack (``make render STACK=prod``: build/<stack>/plan.json and build/<stack>/manifests,
chart-rendered objects included), collects every image reference pinned by digest, and refuses the plan when
- the mirror report was made for another registry, or signed with another key than the stack's
  ``mesh.signatures.platformKey`` (admission would refuse every image), or
- an image is not in the report as ``signed`` at that registry path and digest (first-party images count
  when the lock's ``apps`` pins them: the release pipeline signed and attested them).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable

import yaml

from components import catalog
from tools.mirror.report import SIGNED, Report, key_fingerprint

_IMAGE = re.compile(r"(?<![\w./:@-])([a-z0-9][a-z0-9.-]*(?::[0-9]+)?/[a-z0-9._/-]+)(?::[\w.-]+)?@(sha256:[0-9a-f]{64})")


def images_in(texts: Iterable[str]) -> set[tuple[str, str]]:
    """``(name, digest)`` of every image reference (``name[:tag]@sha256:...``) in the texts."""
    return {(m.group(1), m.group(2)) for text in texts for m in _IMAGE.finditer(text)}


def rendered_images(build: Path) -> set[tuple[str, str]]:
    plan = build / "plan.json"
    if not plan.exists():
        raise FileNotFoundError(f"{plan} not found: render the stack first (make render STACK=<stack>)")
    texts = [plan.read_text(encoding="utf-8")]
    texts += [p.read_text(encoding="utf-8") for p in sorted((build / "manifests").rglob("*.yaml"))]
    return images_in(texts)


def admission_keys(build: Path) -> set[str]:
    """Fingerprints of the public keys the rendered ClusterImagePolicies trust: what admission will enforce."""
    keys = set()
    for path in sorted((build / "manifests").rglob("clusterimagepolicy-*.yaml")):
        policy = yaml.safe_load(path.read_text(encoding="utf-8"))
        for authority in (policy.get("spec") or {}).get("authorities") or []:
            data = (authority.get("key") or {}).get("data")
            if data:
                keys.add(key_fingerprint(data))
    return keys


def problems(images: set[tuple[str, str]], report: Report | None, registry: str, trusted_keys: set[str],
             apps: Iterable[catalog.AppImage] = ()) -> list[str]:
    """Why the plan may not be promoted; empty when every image is mirrored and signed with the one key
    admission trusts."""
    if report is None:
        return ["no mirror report: run `make mirror STACK=<stack>` (tools/mirror) before promoting"]
    found = []
    if report.registry != registry:
        found.append(f"the mirror report is for registry {report.registry}, the stack pulls from {registry}")
    if trusted_keys != {report.platform_key}:
        trusted = ", ".join(sorted(trusted_keys)) or "no key"
        found.append(f"the mirror signed with key {report.platform_key}; the stack's admission policies trust {trusted} "
                     "(mesh.signatures.platformKey): every image would be refused at admission")
    released = {(a.ref.name, a.digest) for a in apps}
    entries = {(e.target, e.digest): e for e in report.entries.values()}
    for name, digest in sorted(images):
        if (name, digest) in released:
            continue
        entry = entries.get((name, digest))
        if entry is None:
            found.append(f"{name}@{digest}: not in the mirror report (not mirrored, scanned and signed)")
        elif entry.state != SIGNED:
            found.append(f"{name}@{digest}: mirror state {entry.state}: {entry.reason}")
    return found
