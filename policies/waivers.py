"""Waivers: the two ways an object gets an exception from a rule, both with a reason.

1. The object carries ``waivers.somaagenthub.io/<rule-name>: "<reason>"`` on its own metadata
   (the kit writes it from ``opt_out={...}``). Whether it counts is the stack's decision, made in
   the rule's policy config: ``waivers: any`` (dev) accepts every waiver with a reason;
   ``waivers: allow-list`` (prod) accepts only objects listed in the rule's ``allowedWaivers``.
2. An ``allowedWaivers`` entry that also names the ``image`` it excuses, or the ``finding`` (a phrase
   of the message, such as "grants write on secrets"), for objects a chart renders (they carry no
   annotation of ours): it waives only the findings on that object that quote that image or phrase,
   in the stack whose config lists it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .model import ResourceView

WAIVER_PREFIX = "waivers.somaagenthub.io/"
NOT_ALLOWED = "waiver not on the prod allow list"


@dataclass(frozen=True)
class Waiver:
    rule: str
    resource_id: str
    reason: str
    accepted: bool
    note: str = ""
    scope: str = ""
    """Set when the waiver is an allow-list entry that excuses one finding only: "image <ref>" or
    "finding <phrase>"."""


def declared_waivers(resource: ResourceView) -> dict[str, str]:
    """rule name -> reason, for every waiver annotation on the object."""
    return {
        key[len(WAIVER_PREFIX) :]: value.strip() if isinstance(value, str) else ""
        for key, value in resource.annotations.items()
        if key.startswith(WAIVER_PREFIX)
    }


def _scoped(entry: Mapping[str, Any]) -> str:
    """The one finding an allow-list entry excuses on its own: an image it quotes, or a phrase."""
    if entry.get("image"):
        return f"'{entry['image']}'"
    return str(entry.get("finding") or "")


def _scope(entry: Mapping[str, Any]) -> str:
    return f"image {entry['image']}" if entry.get("image") else f"finding '{entry['finding']}'"


def _image_entry(resource_id: str, message: str, config: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for entry in config.get("allowedWaivers", []):
        if isinstance(entry, Mapping) and entry.get("resource") == resource_id and _scoped(entry) and _scoped(entry) in message:
            return entry
    return None


def image_waivers(rule: str, config: Mapping[str, Any]) -> list[Waiver]:
    """The image-scoped allow-list entries of ``rule``'s config, as waivers (for the inventory)."""
    found = []
    for entry in config.get("allowedWaivers", []):
        if isinstance(entry, Mapping) and (entry.get("image") or entry.get("finding")):
            reason = str(entry.get("reason") or "").strip()
            found.append(Waiver(rule, str(entry.get("resource", "")), reason, bool(reason),
                                "" if reason else "waiver has no reason", scope=_scope(entry)))
    return found


def judge_waiver(resource: ResourceView, rule: str, config: Mapping[str, Any], message: str = "") -> Waiver | None:
    """The waiver for this finding of ``rule`` and whether this stack's config accepts it (None: no waiver)."""
    entry = _image_entry(resource.resource_id, message, config)
    if entry is not None:
        reason = str(entry.get("reason") or "").strip()
        return Waiver(rule, resource.resource_id, reason, bool(reason), "" if reason else "waiver has no reason",
                      scope=_scope(entry))
    reason = declared_waivers(resource).get(rule)
    if reason is None:
        return None
    resource_id = resource.resource_id
    if not reason:
        return Waiver(rule, resource_id, reason, False, "waiver has no reason")
    if config.get("waivers", "allow-list") == "any":
        return Waiver(rule, resource_id, reason, True)
    allowed = {entry.get("resource") for entry in config.get("allowedWaivers", []) if isinstance(entry, Mapping)}
    if resource_id in allowed:
        return Waiver(rule, resource_id, reason, True)
    return Waiver(rule, resource_id, reason, False, NOT_ALLOWED)
