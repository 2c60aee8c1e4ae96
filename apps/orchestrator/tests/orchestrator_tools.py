"""Tools the tool service serves in the orchestrator's end-to-end tests (module level: the sandbox's child
process imports them): the two the example crew incident-triage names."""
from __future__ import annotations

from soma_tools.registry import tool


@tool(name="log-search", version="1.0.0", description="Searches the service logs for a query.",
      input_schema={"type": "object", "properties": {"query": {"type": "string", "maxLength": 200}}, "required": ["query"],
                    "additionalProperties": False},
      output_schema={"type": "object", "properties": {"matches": {"type": "integer"}, "first": {"type": "string"}},
                     "required": ["matches", "first"]},
      timeout_seconds=5)
def log_search(query: str) -> dict:
    return {"matches": 412, "first": f"10:02:13 payments ERROR upstream 502 ({query})"}


@tool(name="runbook-lookup", version="1.0.0", description="Finds the runbook for a topic.",
      input_schema={"type": "object", "properties": {"topic": {"type": "string"}}, "required": ["topic"]},
      output_schema={"type": "object", "properties": {"runbook": {"type": "string"}}, "required": ["runbook"]},
      timeout_seconds=5)
def runbook_lookup(topic: str) -> dict:
    raise AssertionError("runbook-lookup ran although OpenFGA refused it")


TOOLS = [log_search, runbook_lookup]
