"""Crews authored the way CrewAI projects write them (agents, tasks, a process), one YAML file per crew,
checked against a schema of our own and compiled to LangGraph graphs (``crewai`` is not a dependency); and
AutoGen-style group conversations as a workflow step (``crews.conversation``, on ``autogen-agentchat``)."""
from .compiler import (CONVERSATIONS_DIR, EXAMPLE_TOOLS, EXAMPLES_DIR, compile_crew, compile_example_conversations,
                       compile_example_crews, parse_crew)
from .errors import CrewDefinitionError, CrewRunError
from .graph import CrewState

__all__ = ["CONVERSATIONS_DIR", "EXAMPLE_TOOLS", "EXAMPLES_DIR", "CrewDefinitionError", "CrewRunError", "CrewState",
           "compile_crew", "compile_example_conversations", "compile_example_crews", "parse_crew"]
