"""Vault's CA for a client that is not a kit pod, in the client's own namespace, through the platform CA's issuer.

Vault's serving certificate (raft mode) is issued by the platform ClusterIssuer, so any certificate that issuer
signs carries the same ``ca.crt``. A small certificate requested in the client's namespace is kept only for that
key: cert-manager writes and renews it there, with no reader of another namespace's Secrets and in one step after
the issuer (the mesh's Vault Issuer and the OpenFGA bootstrap sit on the stack's longest dependency chain; the
External Secrets copy of components/core/secrets/certificate_copy.py, which identity's pods use, costs that chain
four more waves).
"""
from __future__ import annotations

import pulumi

from components.kit import custom_resource

VAULT_CA_BUNDLE = "vault-ca-bundle"
"""The Certificate and its Secret; only ``ca.crt`` is read."""


def vault_ca_bundle(namespace: str, ca_issuer: str, opts: pulumi.ResourceOptions) -> pulumi.Resource:
    """The Certificate whose Secret ``vault-ca-bundle`` (key ``ca.crt``) holds the CA Vault's certificate chains to."""
    return custom_resource("cert-manager.io/v1", "Certificate", VAULT_CA_BUNDLE, namespace, {
        "secretName": VAULT_CA_BUNDLE, "commonName": f"{VAULT_CA_BUNDLE}.{namespace}.svc",
        "dnsNames": [f"{VAULT_CA_BUNDLE}.{namespace}.svc"], "duration": "2160h", "renewBefore": "720h",
        "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
        "issuerRef": {"name": ca_issuer, "kind": "ClusterIssuer", "group": "cert-manager.io"},
    }, opts)
