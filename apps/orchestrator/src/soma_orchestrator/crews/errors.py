"""The errors of crews: every problem of a crew file at once at registration, one clear failure at run time."""
from __future__ import annotations

from typing import Iterable

from ..definitions import DefinitionError


def field_path(location: Iterable[str | int]) -> str:
    """``("tasks", "report", "context", 0)`` -> ``tasks.report.context[0]``: the path an author reads."""
    path = ""
    for part in location:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "(crew)"


class CrewDefinitionError(DefinitionError):
    """All the problems of one crew file. It is a ``DefinitionError`` (source, line and field of the first
    problem) so the registration API handles it like any other; ``problems`` holds every one, in file order,
    so an author fixes the whole file in one round instead of one error per attempt."""

    def __init__(self, problems: list[DefinitionError]):
        ordered = sorted(problems, key=lambda p: (p.line if p.line is not None else 0, p.field_path))
        first = ordered[0]
        super().__init__(first.source, first.line, first.field_path, first.problem)
        self.problems: tuple[DefinitionError, ...] = tuple(ordered)
        if len(ordered) > 1:
            listing = "\n".join(f"  {problem}" for problem in ordered)
            self.args = (f"{len(ordered)} problems in {first.source}:\n{listing}",)


class CrewRunError(RuntimeError):
    """A crew run cannot go on: the manager chose something it may not, a task's answer never matched its
    output schema, an agent kept calling tools past its bound. The message names the crew, task and agent."""
