"""SomaAgentHub tool service: versioned JSON-schema tools, run sandboxed, served over REST and MCP.

Kept import-free: the sandbox's child process imports ``soma_tools.runner`` and ``soma_tools.isolation``
only, and must not pay for the web stack."""
