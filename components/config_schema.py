"""Turn untyped stack configuration into frozen dataclasses, reporting every problem at once.

Pulumi hands a program its configuration as strings and JSON blobs. A platform engineer who
mistypes one key should learn about *all* mistakes in one run, each with the key path that is
wrong, before a single resource is registered. This module does that for any tree of frozen
dataclasses: field names are snake_case in Python and camelCase in the stack file; constraints
live next to the field (``field(metadata=rule(...))``) so the schema reads as documentation.
"""
from __future__ import annotations

import collections.abc
import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

QUANTITY_CPU = re.compile(r"^([0-9]+m|[0-9]+(\.[0-9]+)?)$")
QUANTITY_BYTES = re.compile(r"^[0-9]+(Ki|Mi|Gi|Ti)$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DURATION = re.compile(r"^[0-9]+(ms|s|m|h|d|w|y)$")
CRON = re.compile(r"^(\S+\s+){4,5}\S+$")


@dataclass(frozen=True)
class Rule:
    """Constraints on one field beyond its Python type."""

    minimum: float | None = None
    maximum: float | None = None
    pattern: re.Pattern[str] | None = None
    pattern_hint: str = ""
    choices: tuple[Any, ...] = ()
    check: Callable[[Any], str | None] | None = None


def rule(**kwargs: Any) -> dict[str, Rule]:
    """Field metadata carrying a :class:`Rule`: ``field(metadata=rule(minimum=1))``."""
    return {"rule": Rule(**kwargs)}


def cpu() -> Any:
    return field(metadata=rule(pattern=QUANTITY_CPU, pattern_hint="a CPU quantity such as 250m or 2"))


def memory(default: str | None = None) -> Any:
    meta = rule(pattern=QUANTITY_BYTES, pattern_hint="a byte quantity such as 512Mi or 20Gi")
    return field(metadata=meta) if default is None else field(default=default, metadata=meta)


def count(minimum: int = 1, maximum: int = 99) -> Any:
    return field(metadata=rule(minimum=minimum, maximum=maximum))


def duration() -> Any:
    return field(metadata=rule(pattern=DURATION, pattern_hint="a duration such as 30s, 15d or 2w"))


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


class SettingsError(ValueError):
    """All problems found in a stack's configuration, each naming its config key."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"{len(problems)} problem(s) in the stack configuration:\n{lines}")


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin in (dict, collections.abc.Mapping):
        return "a mapping"
    if origin in (tuple, list):
        return "a list"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}.get(tp, str(tp))


class _Reader:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, path: str, message: str) -> None:
        self.problems.append(f"{path}: {message}")

    def build(self, cls: type, raw: Any, path: str) -> Any:
        if not isinstance(raw, Mapping):
            self.fail(path, f"expected a mapping, got {type(raw).__name__}")
            return None
        hints = typing.get_type_hints(cls)
        fields = {camel(f.name): f for f in dataclasses.fields(cls) if f.init}
        for key in raw:
            if key not in fields:
                known = ", ".join(sorted(fields))
                self.fail(f"{path}.{key}", f"unknown key (known keys here: {known})")
        values: dict[str, Any] = {}
        complete = True
        for key, f in fields.items():
            child = f"{path}.{key}"
            if key not in raw:
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:  # type: ignore[misc]
                    self.fail(child, "required value is missing")
                    complete = False
                continue
            value = self.convert(hints[f.name], raw[key], child)
            if value is _INVALID:
                complete = False
                continue
            if not self.check_rule(f.metadata.get("rule"), value, child):
                complete = False
                continue
            values[f.name] = value
        if not complete:
            return _INVALID
        try:
            return cls(**values)
        except ValueError as err:
            self.fail(path, str(err))
            return _INVALID

    def convert(self, tp: Any, raw: Any, path: str) -> Any:
        origin = typing.get_origin(tp)
        args = typing.get_args(tp)
        if origin in (typing.Union, types.UnionType):
            if raw is None and type(None) in args:
                return None
            (inner,) = [a for a in args if a is not type(None)]
            return self.convert(inner, raw, path)
        if typing.get_origin(tp) is typing.Literal:
            if raw not in args:
                self.fail(path, f"must be one of {', '.join(map(str, args))}; got {raw!r}")
                return _INVALID
            return raw
        if dataclasses.is_dataclass(tp):
            return self.build(tp, raw, path)  # type: ignore[arg-type]
        if origin in (dict, collections.abc.Mapping):
            if not isinstance(raw, Mapping):
                self.fail(path, f"expected a mapping, got {type(raw).__name__}")
                return _INVALID
            out = {k: self.convert(args[1], v, f"{path}.{k}") for k, v in raw.items()}
            return _INVALID if _INVALID in out.values() else types.MappingProxyType(out)
        if origin is tuple:
            if not isinstance(raw, list):
                self.fail(path, f"expected a list, got {type(raw).__name__}")
                return _INVALID
            items = tuple(self.convert(args[0], v, f"{path}[{i}]") for i, v in enumerate(raw))
            return _INVALID if _INVALID in items else items
        if tp is bool:
            if isinstance(raw, bool):
                return raw
            if raw in ("true", "false"):  # the engine passes top-level scalars as strings
                return raw == "true"
        elif tp is int:
            if isinstance(raw, int) and not isinstance(raw, bool):
                return raw
            if isinstance(raw, str) and raw.isdigit():
                return int(raw)
            if isinstance(raw, float) and raw.is_integer():
                return int(raw)
        elif tp is float:
            if isinstance(raw, (int, float)) and not isinstance(raw, bool):
                return float(raw)
        elif tp is str:
            if isinstance(raw, str):
                return raw
        self.fail(path, f"expected {_type_name(tp)}, got {raw!r}")
        return _INVALID

    def check_rule(self, r: Rule | None, value: Any, path: str) -> bool:
        if r is None:
            return True
        before = len(self.problems)
        if r.minimum is not None and value < r.minimum:
            self.fail(path, f"must be at least {r.minimum:g}; got {value}")
        if r.maximum is not None and value > r.maximum:
            self.fail(path, f"must be at most {r.maximum:g}; got {value}")
        if r.pattern is not None and not r.pattern.match(str(value)):
            self.fail(path, f"must be {r.pattern_hint or 'of the form ' + r.pattern.pattern}; got {value!r}")
        if r.choices and value not in r.choices:
            self.fail(path, f"must be one of {', '.join(map(str, r.choices))}; got {value!r}")
        if r.check is not None and (message := r.check(value)):
            self.fail(path, message)
        return len(self.problems) == before


class _Invalid:
    def __repr__(self) -> str:
        return "<invalid>"


_INVALID: Any = _Invalid()


def read(cls: type, raw: Mapping[str, Any], root: str) -> tuple[Any, list[str]]:
    """Build ``cls`` from ``raw``; return ``(value or None, problems)``."""
    reader = _Reader()
    value = reader.build(cls, raw, root)
    return (None if value is _INVALID else value), reader.problems
