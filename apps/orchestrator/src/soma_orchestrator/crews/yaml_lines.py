"""YAML to plain data plus the line of every key and item, so an error can point at the line to fix.

PyYAML's ``compose`` keeps each node's position; building the values ourselves from those nodes (instead of
``safe_load``) lets us record ``path -> line`` and refuse duplicate keys, which ``safe_load`` silently
resolves to the last one (a duplicated task id would otherwise drop a task without a word).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ..definitions import DefinitionError
from .errors import field_path

Path = tuple[str | int, ...]


@dataclass
class LocatedYaml:
    """The document as plain data, ``lines[path]`` = 1-based line of that key or item."""

    data: Any
    lines: dict[Path, int]
    problems: list[DefinitionError] = field(default_factory=list)

    def line_of(self, path: Path) -> int | None:
        """The line of ``path``, or of its nearest ancestor that exists (a missing key: its parent's line)."""
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), None)


def load(text: str, source: str) -> LocatedYaml:
    """Parse one YAML document. A syntax error becomes a ``DefinitionError`` with YAML's own line."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = " ".join(part for part in (error.context, error.problem) if part)
        raise DefinitionError(source, line, "(yaml)", f"not valid YAML: {problem}") from None
    except yaml.YAMLError as error:
        raise DefinitionError(source, None, "(yaml)", f"not valid YAML: {error}") from None
    located = LocatedYaml(data=None, lines={(): 1})
    if root is None:
        return located
    located.lines[()] = root.start_mark.line + 1
    located.data = _value(root, (), located, source, SafeConstructor())
    return located


def _value(node: Node, path: Path, located: LocatedYaml, source: str, constructor: SafeConstructor) -> Any:
    if isinstance(node, MappingNode):
        result: dict[Any, Any] = {}
        first_seen: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = _value(key_node, path, located, source, constructor)
            line = key_node.start_mark.line + 1
            if not isinstance(key, str):
                located.problems.append(DefinitionError(
                    source, line, field_path(path), f"keys must be strings, got {key!r}"))
                continue
            if key in first_seen:
                located.problems.append(DefinitionError(
                    source, line, field_path(path + (key,)),
                    f"duplicate key '{key}' (first defined at line {first_seen[key]}); ids and keys must be unique"))
                continue
            first_seen[key] = line
            located.lines[path + (key,)] = line
            result[key] = _value(value_node, path + (key,), located, source, constructor)
        return result
    if isinstance(node, SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            located.lines[path + (index,)] = item.start_mark.line + 1
            items.append(_value(item, path + (index,), located, source, constructor))
        return items
    assert isinstance(node, ScalarNode)
    try:
        return constructor.construct_object(node, deep=True)
    except yaml.YAMLError as error:
        located.problems.append(DefinitionError(
            source, node.start_mark.line + 1, field_path(path), f"cannot read this value: {error}"))
        return None
