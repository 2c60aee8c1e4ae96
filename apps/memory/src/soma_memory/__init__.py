"""SomaAgentHub memory gateway: the one door to long-term memory (issue 15 point 4)."""
