"""Registering definitions: compile first, store only what compiled (all or nothing), recompile on load.

A definition's source is what is stored (the graph is code, rebuilt per run), so a restarted orchestrator
finds every workflow again. Compilers are looked up by ``kind``: ``crew`` is the crews part's
``soma_orchestrator.crews.compile_crew(text, source, available_tools)`` when that module is present; tests and
other authoring styles add their own ``Compiler`` — any ``(text, source_name, available_tools) -> Definition``
that raises ``DefinitionError`` for bad input.
"""
from __future__ import annotations

import importlib
from typing import Callable, Mapping

from .definitions import Definition, DefinitionError
from .store import Store, WorkflowVersion

Compiler = Callable[[str, str, frozenset[str]], Definition]


def default_compilers() -> dict[str, Compiler]:
    compilers: dict[str, Compiler] = {}
    try:
        crews = importlib.import_module("soma_orchestrator.crews")
    except ModuleNotFoundError as exc:
        if exc.name not in ("soma_orchestrator.crews",):
            raise
    else:
        compilers["crew"] = crews.compile_crew
    return compilers


class UnknownKind(ValueError):
    pass


class DefinitionRegistry:
    def __init__(self, store: Store, compilers: Mapping[str, Compiler], available_tools: frozenset[str]):
        self.store = store
        self.compilers = dict(compilers)
        self.available_tools = available_tools
        self._compiled: dict[tuple[str, int], Definition] = {}

    def compile(self, kind: str, source: str, source_name: str) -> Definition:
        try:
            compiler = self.compilers[kind]
        except KeyError:
            raise UnknownKind(f"kind {kind!r} is not one this orchestrator compiles (known: {sorted(self.compilers)})") from None
        definition = compiler(source, source_name, self.available_tools)
        unknown = sorted(set(definition.tools) - self.available_tools)
        if unknown:   # a compiler that forgot to check: refuse here rather than mid-run
            raise DefinitionError(source_name, None, "tools", f"unknown tools {unknown} (available: {sorted(self.available_tools)})")
        return definition

    async def register(self, workflow_id: str, tenant: str, kind: str, source: str, source_name: str,
                       registered_by: str) -> tuple[WorkflowVersion, Definition]:
        definition = self.compile(kind, source, source_name)          # raises before anything is stored
        version = await self.store.add_version(workflow_id, tenant, kind, definition.name, source_name, source, registered_by)
        self._compiled[(workflow_id, version.version)] = definition
        return version, definition

    async def definition(self, workflow: WorkflowVersion) -> Definition:
        key = (workflow.workflow_id, workflow.version)
        if key not in self._compiled:
            self._compiled[key] = self.compile(workflow.kind, workflow.source, workflow.source_name)
        return self._compiled[key]
