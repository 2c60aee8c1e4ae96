"""SomaAgentHub's orchestrator (issue 15): workflows as LangGraph graphs, crews compiled to them."""
