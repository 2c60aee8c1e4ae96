"""Find values the program sets that a chart would silently ignore.

Helm accepts any key; a misspelt or moved key (``securityContext`` one level too high, a key a
new chart version renamed) changes nothing and nobody notices. A key counts as used when it is in
the chart's default values (subcharts' defaults under their key), or the chart's
``values.schema.json`` names it, or, failing both, the rendered output shows it is read: the
mapping that holds it appears whole in a rendered object (charts pass such maps through with
``toYaml``), or a marker put in its place shows up in the output, or changing the key changes
the output.
"""
from __future__ import annotations

import copy
from typing import Any, Callable, Iterator, Mapping

from tools import helm_engine


def _leaves(values: Mapping[str, Any], defaults: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], bool]]:
    """Each key the program sets, with whether the chart's defaults declare it.

    Descends while both sides are mappings. A key under a default that is an empty mapping
    (``podLabels: {}``) or null is taken as declared: the chart passes that map through whole.
    """
    for key, value in values.items():
        here = path + (str(key),)
        if isinstance(defaults, Mapping) and key in defaults:
            if isinstance(value, Mapping) and isinstance(defaults[key], Mapping) and defaults[key]:
                yield from _leaves(value, defaults[key], here)
            else:
                yield here, True
        elif isinstance(defaults, Mapping) and not defaults and path:
            yield here, True
        elif defaults is None and path:
            yield here, True
        else:
            yield here, False


def _schema_names(schema: Any, path: tuple[str, ...]) -> bool:
    """Whether ``values.schema.json`` declares ``path`` by name (properties or patternProperties)."""
    import re

    node = schema
    for part in path:
        if not isinstance(node, Mapping):
            return False
        props = node.get("properties") or {}
        if part in props:
            node = props[part]
            continue
        pattern = next((v for k, v in (node.get("patternProperties") or {}).items() if re.search(k, part)), None)
        if pattern is None:
            return False
        node = pattern
    return True


def _perturbed(values: Mapping[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    """``values`` with the key at ``path`` changed: a flipped bool, a number plus one, a string
    with a suffix; a mapping or list is removed. Changing rather than removing tells a key the chart
    reads from one it ignores even when our value equals the chart's fallback."""
    changed = copy.deepcopy(dict(values))
    node = changed
    for part in path[:-1]:
        node = node[part]
    value = node[path[-1]]
    if isinstance(value, bool):
        node[path[-1]] = not value
    elif isinstance(value, (int, float)):
        node[path[-1]] = value + 1
    elif isinstance(value, str):
        node[path[-1]] = value + "-probe"
    else:
        del node[path[-1]]
    return changed


def _mappings(node: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(node, Mapping):
        yield node
        for value in node.values():
            yield from _mappings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _mappings(value)


def _at(values: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = values
    for part in path:
        node = node[part]
    return node


def mappings_by_key(rendered: list[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Every mapping of the rendered objects (CRDs left out: values never flow into them), by each key it has."""
    index: dict[str, list[Mapping[str, Any]]] = {}
    for obj in rendered:
        if obj.get("kind") == "CustomResourceDefinition":
            continue
        for found in _mappings(obj):
            for key in found:
                index.setdefault(key, []).append(found)
    return index


def passed_through(values: Mapping[str, Any], path: tuple[str, ...], index: Mapping[str, list[Mapping[str, Any]]]) -> bool:
    """Whether the mapping holding ``path`` shows up whole (every key, equal values) in a rendered object."""
    holder = _at(values, path[:-1]) if len(path) > 1 else None
    if not isinstance(holder, Mapping) or not holder:
        return False
    return any(all(key in found and found[key] == value for key, value in holder.items())
               for found in index.get(path[-1], ()))


def _markable(value: Any, path: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """The string and number leaves under ``value`` (booleans excluded), with their paths."""
    if isinstance(value, Mapping):
        for key, sub in value.items():
            yield from _markable(sub, path + (key,))
    elif isinstance(value, list):
        for index, sub in enumerate(value):
            yield from _markable(sub, path + (index,))
    elif isinstance(value, (str, int, float)) and not isinstance(value, bool):
        yield path, value


def marked_paths(values: Mapping[str, Any], paths: list[tuple[str, ...]],
                 render: Callable[[dict[str, Any]], Mapping[str, str]]) -> set[tuple[str, ...]]:
    """Of ``paths``, those shown read in one render: each string and number under them is replaced by
    a marker no chart could produce otherwise, and a marker found in the output proves its key was read."""
    marked = copy.deepcopy(dict(values))
    markers: dict[str, tuple[str, ...]] = {}
    for number, path in enumerate(paths):
        for leaf_path, value in _markable(_at(values, path), tuple(path)):
            marker = f"zq{number}x{len(markers)}qz" if isinstance(value, str) else 7_000_000_000 + len(markers)
            node: Any = marked
            for step in leaf_path[:-1]:
                node = node[step]
            node[leaf_path[-1]] = marker
            markers[str(marker)] = path
    if not markers:
        return set()
    try:
        text = "\n".join(render(marked).values())
    except Exception:  # noqa: BLE001 - markers broke a template; fall back to one render per key
        return set()
    return {path for marker, path in markers.items() if marker in text}


def ignored_value_keys(request: Any, render: Callable[[dict[str, Any]], Any],
                       rendered: list[Mapping[str, Any]] = ()) -> list[str]:
    """Dotted keys of ``request.values`` that the chart neither declares nor reacts to.

    ``rendered`` are the objects the chart rendered with these values; keys whose mapping they
    carry whole need no further render.
    """
    defaults = helm_engine.chart_defaults(request.folder)
    schema = helm_engine.chart_schema(request.folder)
    undeclared = [path for path, declared in _leaves(request.values, defaults) if not declared]
    if schema is not None:
        undeclared = [path for path in undeclared if not _schema_names(schema, path)]
    if undeclared and rendered:
        index = mappings_by_key(rendered)
        undeclared = [path for path in undeclared if not passed_through(request.values, path, index)]
    if not undeclared:
        return []
    read = marked_paths(request.values, undeclared, render)
    undeclared = [path for path in undeclared if path not in read]
    if not undeclared:
        return []
    baseline = render(request.values)
    return [".".join(path) for path in undeclared if _renders_same(render, _perturbed(request.values, path), baseline)]


def _renders_same(render: Callable[[dict[str, Any]], Any], values: dict[str, Any], baseline: Any) -> bool:
    """Whether the chart renders ``values`` exactly as the baseline; a chart that refuses them reacts to the key."""
    try:
        return render(values) == baseline
    except Exception:  # noqa: BLE001 - any refusal shows the key is read
        return False
