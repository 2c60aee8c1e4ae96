"""Registering definitions: compile first, store only what compiled (all or nothing), recompile on load.

A definition's source is what is stored (the graph is code, rebuilt per run), so a restarted orchestrator
finds every workflow again. Compilers are looked up by ``kind``: ``crew`` is the crews part's
``soma_orchestrator.crews.compile_crew(text, source, available_tools)`` when that module is present; tests and
other authoring styles add their own ``Compiler`` — any ``(text, source_name, available_tools) -> Definition``
that raises ``DefinitionError`` for bad input.

Tool names are checked at registration against what the tool source offers the workflow
(``ToolSource.names``: the tool service's listing for ``workflow:<id>``); a stored version is recompiled on load
without that check (``available_tools=None``), since it passed it when registered and each run asks the tool
service again: reading an old run never depends on the tool service being up.
"""
from __future__ import annotations

import importlib
from typing import Callable, Mapping

from .definitions import Definition, DefinitionError
from .store import Store, WorkflowVersion
from .toolservice import ToolSource

Compiler = Callable[[str, str, "frozenset[str] | None"], Definition]


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
    def __init__(self, store: Store, compilers: Mapping[str, Compiler], tools: ToolSource):
        self.store = store
        self.compilers = dict(compilers)
        self.tools = tools
        self._compiled: dict[tuple[str, int], Definition] = {}

    def compile(self, kind: str, source: str, source_name: str, available_tools: frozenset[str] | None) -> Definition:
        """``available_tools=None``: do not check tool names (a stored version, checked when registered)."""
        try:
            compiler = self.compilers[kind]
        except KeyError:
            raise UnknownKind(f"kind {kind!r} is not one this orchestrator compiles (known: {sorted(self.compilers)})") from None
        definition = compiler(source, source_name, available_tools)
        unknown = sorted(set(definition.tools) - available_tools) if available_tools is not None else []
        if unknown:   # a compiler that forgot to check: refuse here rather than mid-run
            raise DefinitionError(source_name, None, "tools", f"unknown tools {unknown} (available: {sorted(available_tools)})")
        return definition

    async def register(self, workflow_id: str, tenant: str, kind: str, source: str, source_name: str,
                       registered_by: str) -> tuple[WorkflowVersion, Definition]:
        """Raises ``ToolServiceUnavailable`` when the tool service cannot say what it offers (nothing stored)."""
        if kind not in self.compilers:
            raise UnknownKind(f"kind {kind!r} is not one this orchestrator compiles (known: {sorted(self.compilers)})")
        available = await self.tools.names(tenant, workflow_id)
        definition = self.compile(kind, source, source_name, available)          # raises before anything is stored
        version = await self.store.add_version(workflow_id, tenant, kind, definition.name, source_name, source, registered_by)
        self._compiled[(workflow_id, version.version)] = definition
        return version, definition

    async def definition(self, workflow: WorkflowVersion) -> Definition:
        key = (workflow.workflow_id, workflow.version)
        if key not in self._compiled:
            self._compiled[key] = self.compile(workflow.kind, workflow.source, workflow.source_name, None)
        return self._compiled[key]
