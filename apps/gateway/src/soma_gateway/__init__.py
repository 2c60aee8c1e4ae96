"""SomaAgentHub's API gateway: verifies the caller's token (identity's JWKS), asks OpenFGA whether the caller
may do what the route means, meters the tenant (Redis), forwards to the backing service and records every
decision as an audit event. docs/apps.md describes the API, the route table and the reason codes."""
