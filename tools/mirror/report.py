"""The mirror's report: one entry per image with its state, written after every image.

It is both the record a release manager reads (what was copied, how the upstream signature was checked,
what the scan found and waived, where the SBOM came from) and the mirror's resume point: an image whose
entry says ``signed`` at the same digest, registry and platform key is not redone. Promotion to prod reads
it too (tools/mirror/promotion.py).
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

SIGNED = "signed"
"""Copied by digest, scanned without an unwaived critical finding, SBOM attested and signed with the platform key."""
REFUSED = "refused"
"""A rule said no (upstream signature, critical finding): the image never reached the platform registry."""
FAILED = "failed"
"""A tool or the network failed: the next run tries again."""

_PEM_BODY = re.compile(r"-----BEGIN PUBLIC KEY-----(.*?)-----END PUBLIC KEY-----", re.S)


def key_fingerprint(public_key_pem: str) -> str:
    """``sha256:<hex>`` of the key's DER bytes: the same key gives the same fingerprint however its PEM is wrapped."""
    match = _PEM_BODY.search(public_key_pem)
    if not match:
        raise ValueError("not a PEM public key (-----BEGIN PUBLIC KEY-----)")
    return "sha256:" + hashlib.sha256(base64.b64decode("".join(match.group(1).split()))).hexdigest()


@dataclass
class Entry:
    key: str
    source: str
    target: str
    digest: str
    state: str
    upstream_signature: str = ""
    scan: dict = field(default_factory=dict)
    """``critical`` (count), ``waived`` (findings with their waiver's id and expiry), ``blocking``."""
    sbom: str = ""
    reason: str = ""

    def waivers_still_current(self, today: str) -> bool:
        """An image signed under a waiver is scanned again once the waiver has expired."""
        return all(w["expires"] >= today for w in self.scan.get("waived", []))


@dataclass
class Report:
    registry: str
    platform_key: str
    """Fingerprint of the public key the images were signed with."""
    entries: dict[str, Entry] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> "Report | None":
        if not path.exists():
            return None
        raw = json.loads(path.read_text(encoding="utf-8"))
        return cls(registry=raw["registry"], platform_key=raw["platform_key"],
                   entries={k: Entry(**v) for k, v in raw.get("entries", {}).items()})

    def save(self, path: Path) -> None:
        """Atomically, so an interrupted run leaves the previous complete report."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        document = {"registry": self.registry, "platform_key": self.platform_key,
                    "entries": {k: asdict(v) for k, v in sorted(self.entries.items())}}
        tmp.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)

    def signed(self, target: str, digest: str) -> bool:
        return any(e.state == SIGNED and e.target == target and e.digest == digest for e in self.entries.values())

    def summary(self) -> str:
        counts = {state: sum(1 for e in self.entries.values() if e.state == state) for state in (SIGNED, REFUSED, FAILED)}
        return ", ".join(f"{n} {state}" for state, n in counts.items())
