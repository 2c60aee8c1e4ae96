"""Dated waivers for critical vulnerability findings: one rule for the release gate and the image mirror.

A waiver names the vulnerability (CVE-..., GHSA-...), may narrow itself to a package (and, for the release
gate, an app), and must say why the finding is acceptable and until when: a waiver without a reason or an
expiry date is a configuration error, and after its date the finding blocks again. The release gate reads
them from tools/images/waivers.yaml; the mirror reads each third-party image's ``waivers`` in
platform.lock.yaml, so a waiver travels with the digest it was granted for.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Sequence


@dataclass(frozen=True)
class Waiver:
    vulnerability: str
    reason: str
    expires: dt.date
    package: str = ""
    app: str = ""

    def covers(self, vulnerability: str, package: str, app: str = "") -> bool:
        return vulnerability == self.vulnerability and self.package in ("", package) and self.app in ("", app)

    def current(self, today: dt.date) -> bool:
        """Valid through its date."""
        return self.expires >= today


def parse_waiver(entry: Any, where: str) -> tuple[Waiver | None, str]:
    """``(waiver, "")`` or ``(None, problem)``; the problem names ``where`` and the vulnerability."""
    if not isinstance(entry, dict) or not entry.get("id"):
        return None, f"{where}: needs 'id' (the vulnerability, e.g. CVE-2024-12345)"
    where = f"{where} ({entry['id']})"
    if not str(entry.get("reason") or "").strip():
        return None, f"{where}: needs a 'reason' saying why the finding is acceptable"
    expires = entry.get("expires")
    if isinstance(expires, str):
        try:
            expires = dt.date.fromisoformat(expires)
        except ValueError:
            return None, f"{where}: 'expires' must be a date YYYY-MM-DD, got {entry['expires']!r}"
    if isinstance(expires, dt.datetime) or not isinstance(expires, dt.date):
        return None, f"{where}: needs an 'expires' date (YYYY-MM-DD); a waiver never lasts forever"
    return Waiver(vulnerability=str(entry["id"]), reason=str(entry["reason"]).strip(), expires=expires,
                  package=str(entry.get("package") or ""), app=str(entry.get("app") or "")), ""


def parse_waivers(entries: Any, where: str) -> tuple[list[Waiver], list[str]]:
    """Every waiver of a list, and a problem for each bad entry (``<where>[i]``)."""
    if entries is None:
        return [], []
    if not isinstance(entries, list):
        return [], [f"{where}: must be a list of waivers (id, reason, expires)"]
    waivers, problems = [], []
    for index, entry in enumerate(entries):
        waiver, problem = parse_waiver(entry, f"{where}[{index}]")
        if waiver is None:
            problems.append(problem)
        else:
            waivers.append(waiver)
    return waivers, problems


def covering(waivers: Sequence[Waiver], vulnerability: str, package: str, app: str = "") -> list[Waiver]:
    return [w for w in waivers if w.covers(vulnerability, package, app)]
