"""Find values the program sets that a chart would silently ignore.

Helm accepts any key; a misspelt or moved key (``securityContext`` one level too high, a key a
new chart version renamed) changes nothing and nobody notices. A key counts as used when it is in
the chart's default values (subcharts' defaults under their key), or the chart's
``values.schema.json`` names it, or, failing both, changing it changes the rendered output.
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


def ignored_value_keys(request: Any, render: Callable[[dict[str, Any]], Any]) -> list[str]:
    """Dotted keys of ``request.values`` that the chart neither declares nor reacts to."""
    defaults = helm_engine.chart_defaults(request.folder)
    schema = helm_engine.chart_schema(request.folder)
    undeclared = [path for path, declared in _leaves(request.values, defaults) if not declared]
    if schema is not None:
        undeclared = [path for path in undeclared if not _schema_names(schema, path)]
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
