"""SomaAgentHub identity: short-lived JWTs signed in Vault transit, a JWKS, users and service accounts."""
