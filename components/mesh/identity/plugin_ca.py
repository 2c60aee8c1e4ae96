"""Istio's plug-in CA fed by cert-manager: the ``cacerts`` Certificate, and the istiod/ztunnel values.

What istiod 1.30.2 does with it (github.com/istio/istio at tag 1.30.2, read, not assumed):

* pilot/pkg/bootstrap/istio_ca.go ``detectSigningCABundleAndCRL``: if ``<ROOT_CA_DIR>/tls.crt``
  exists, the signing CA is ``tls.crt`` + ``tls.key``, the root ``ca.crt`` and the chain
  ``tls.crt`` + ``ca.crt`` (the kubernetes.io/tls layout cert-manager writes); ``ROOT_CA_DIR``
  defaults to ``./etc/cacerts``, where the istio-discovery chart mounts the ``cacerts`` Secret
  (templates/deployment.yaml, volume ``cacerts``, ``optional: true``).
* ``createIstioCA``: a complete bundle makes istiod a plugged CA and starts a file watcher on that
  directory (``initCACertsAndCRLWatcher``; there is no ``AUTO_RELOAD_PLUGIN_CERTS`` switch any more:
  releasenotes/notes/drop-reload-plugin-certs.yaml removed it, the reload is always on). On a change,
  ``handleEvent`` loads the new intermediate if the root is unchanged; a changed root is refused
  unless ``ISTIO_MULTIROOT_MESH`` is on and one bundle contains the other - a root rotation needs
  the runbook (docs/runbooks/mesh-ca.md).
* No ``cacerts`` at start: istiod silently falls back to its self-signed CA. So the Certificate
  carries ``pulumi.com/waitFor: condition=Ready`` and istiod must depend on it
  (``IdentityOutputs.signing_ca``).
* security/pkg/pki/ca/ca.go ``sign``: a request for more than ``MAX_WORKLOAD_CERT_TTL`` is refused,
  so ztunnel and waypoints are told to ask for the leaf TTL (``SECRET_TTL``).
"""
from __future__ import annotations

from typing import Any

from components.mesh.identity.pki import CA_SECRET, INTERMEDIATE_COMMON_NAME, MeshCa

API = "cert-manager.io/v1"
ROOT_CA_DIR = "/etc/cacerts"
"""Where the istio-discovery chart (1.30.2) mounts ``cacerts``; said explicitly instead of relying on
istiod's default ``./etc/cacerts`` being resolved from the image's working directory ``/``."""
WAIT_FOR_READY = {"pulumi.com/waitFor": "condition=Ready"}
"""pulumi-kubernetes' await annotation (provider/pkg/metadata/overrides.go): the Certificate is created
only once cert-manager reports it Ready, so what depends on it finds ``cacerts`` in place."""


def certificate_spec(ca: MeshCa, issuer: str) -> dict[str, Any]:
    """``spec`` of the ``cacerts`` Certificate (cert-manager.io/v1, fields of the CRD v1.21.1 installs).

    Exactly what the signer policy pins: the fixed common name, the trust domain's SPIFFE ID as the
    only SAN, ``isCA``, the intermediate's TTL as ``duration``; renewed ``renewBefore`` ahead. The key is
    made by cert-manager (ECDSA P-256, a new one at each renewal) and stored in the Secret: that is the
    price of the plug-in CA (docs/architecture/mesh-identity.md).
    """
    return {
        "secretName": CA_SECRET,
        "commonName": INTERMEDIATE_COMMON_NAME,
        "uris": [ca.trust_domain_id],
        "isCA": True,
        "duration": f"{ca.intermediate_ttl}s",
        "renewBefore": f"{ca.intermediate_renew_before}s",
        "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
        "issuerRef": {"name": issuer, "kind": "Issuer", "group": "cert-manager.io"},
    }


def _seconds(value: int) -> str:
    """Durations for istiod (Go ``time.ParseDuration``) and ztunnel (Rust ``duration_str``): both read ``3600s``."""
    return f"{value}s"


def istiod_values(ca: MeshCa) -> dict[str, Any]:
    """istio-discovery chart (1.30.2) values for the plug-in CA. Keys from its values.yaml:

    * ``meshConfig.trustDomain``: the trust domain istiod writes into every SPIFFE ID;
    * ``env`` (rendered into the discovery container's environment by templates/deployment.yaml):
      ``ROOT_CA_DIR`` where the chart mounts ``cacerts``; ``DEFAULT_WORKLOAD_CERT_TTL`` and
      ``MAX_WORKLOAD_CERT_TTL`` (istio_ca.go) the leaf TTL; istiod's own CA server stays on
      (``ENABLE_CA_SERVER`` default true): it is the CA now, with Vault's intermediate;
    * ``meshConfig.defaultConfig.proxyMetadata.SECRET_TTL``: what waypoint proxies ask for
      (files/waypoint.yaml renders ``ProxyConfig.ProxyMetadata`` as env; pilot-agent reads
      ``SECRET_TTL``, pilot/cmd/pilot-agent/options/options.go), or istiod refuses them above the max.
    """
    leaf = _seconds(ca.leaf_ttl)
    return {
        "env": {"ROOT_CA_DIR": ROOT_CA_DIR, "DEFAULT_WORKLOAD_CERT_TTL": leaf, "MAX_WORKLOAD_CERT_TTL": leaf},
        "meshConfig": {"trustDomain": ca.trust_domain, "defaultConfig": {"proxyMetadata": {"SECRET_TTL": leaf}}},
    }


def ztunnel_values(ca: MeshCa) -> dict[str, Any]:
    """ztunnel chart (1.30.2): its CA is istiod by default (``caAddress`` empty -> istiod's address in
    templates/daemonset.yaml), so nothing about the CA. ``env`` (rendered as container env):
    ``SECRET_TTL`` the leaf TTL (github.com/istio/ztunnel 1.30.2 src/config.rs, default 24h, which
    istiod would refuse) and ``TRUST_DOMAIN`` (ztunnel's own identity, default ``cluster.local``)."""
    return {"env": {"SECRET_TTL": _seconds(ca.leaf_ttl), "TRUST_DOMAIN": ca.trust_domain}}


__all__ = ["API", "ROOT_CA_DIR", "WAIT_FOR_READY", "certificate_spec", "istiod_values", "ztunnel_values"]
