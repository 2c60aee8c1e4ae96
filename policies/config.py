"""Policy config files (policies/config/<stack>.json), read the way the Pulumi CLI reads them.

The file is the one ``pulumi preview --policy-pack-config`` takes: ``"all"`` sets every rule's
enforcement level, each rule's block may set its own ``enforcementLevel`` and custom keys
declared in the rule's config schema. The gate resolves it with the same precedence (pack
default < "all" < rule) and the same schema defaults, so both drivers judge alike.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .rule import Rule

PACK_DEFAULT_LEVEL = "mandatory"
LEVELS = ("advisory", "mandatory", "remediate", "disabled")
CONFIG_DIR = Path(__file__).resolve().parent / "config"


class PolicyConfigError(ValueError):
    """The policy config file cannot be used; the gate refuses to judge with it."""


@dataclass(frozen=True)
class RuleSettings:
    """A rule's effective enforcement level and its custom config (defaults filled in)."""

    level: str
    config: Mapping[str, Any] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return self.level != "disabled"

    @property
    def blocking(self) -> bool:
        """remediate is reported as mandatory: these rules do not rewrite resources."""
        return self.level in ("mandatory", "remediate")


def _level(value: Any, where: str) -> str:
    if value not in LEVELS:
        raise PolicyConfigError(f"{where}: '{value}' is not an enforcement level ({', '.join(LEVELS)})")
    return str(value)


def resolve_settings(document: Mapping[str, Any], rules: Sequence[Rule]) -> dict[str, RuleSettings]:
    """Every rule's settings from a parsed config file; unknown rules or keys are errors."""
    by_name = {rule.name: rule for rule in rules}
    unknown = sorted(set(document) - set(by_name) - {"all"})
    if unknown:
        raise PolicyConfigError(f"unknown policies in config: {', '.join(unknown)}")
    all_level = _level(document["all"], "all") if "all" in document else PACK_DEFAULT_LEVEL
    settings: dict[str, RuleSettings] = {}
    for rule in rules:
        block = document.get(rule.name, {})
        if isinstance(block, str):
            block = {"enforcementLevel": block}
        if not isinstance(block, Mapping):
            raise PolicyConfigError(f"{rule.name}: expected an enforcement level or an object")
        custom = {k: v for k, v in block.items() if k != "enforcementLevel"}
        extra = sorted(set(custom) - set(rule.full_config_schema))
        if extra:
            raise PolicyConfigError(f"{rule.name}: keys not in its config schema: {', '.join(extra)}")
        level = _level(block.get("enforcementLevel", all_level), rule.name)
        settings[rule.name] = RuleSettings(level, {**rule.defaults(), **custom})
    return settings


def load_config_file(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise PolicyConfigError(f"policy config {path} cannot be read: {error.strerror}") from error
    except json.JSONDecodeError as error:
        raise PolicyConfigError(f"policy config {path} is not valid JSON: {error}") from error
    if not isinstance(document, dict):
        raise PolicyConfigError(f"policy config {path} must be a JSON object")
    return document


def stack_config_path(stack: str) -> Path:
    return CONFIG_DIR / f"{stack}.json"
