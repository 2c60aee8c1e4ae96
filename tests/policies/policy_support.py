"""Shared helpers for the policy tests: the fixture catalog and per-rule test config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from policies.rule import Rule

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SAMPLES = Path(__file__).resolve().parent / "samples"
FIXTURE_CATALOG = FIXTURES / "platform.lock.yaml"


def rule_config(rule: Rule, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """A rule's defaults as dev uses them, with the fixture catalog; ``overrides`` win."""
    config: dict[str, Any] = {**rule.defaults(), "waivers": "any"}
    if "catalogPath" in config:
        config["catalogPath"] = str(FIXTURE_CATALOG)
    if "allowedRegistries" in config:
        config["allowedRegistries"] = ["upstream"]
    return {**config, **(overrides or {})}


def with_fixture_catalog(document: dict[str, Any]) -> dict[str, Any]:
    """A stack's policy config file with every catalogPath pointing at the fixture catalog."""
    return {
        key: (
            {**value, "catalogPath": str(FIXTURE_CATALOG)}
            if isinstance(value, dict) and "catalogPath" in value
            else value
        )
        for key, value in document.items()
    }
