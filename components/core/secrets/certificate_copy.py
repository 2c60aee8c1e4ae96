"""A copy of one public CA certificate (``ca.crt``) of a Secret in another namespace, kept current by External Secrets.

Why a copy and not a ConfigMap written here: the certificates copied are generated and renewed by operators (Strimzi's
cluster CA, cert-manager's platform CA behind Vault's serving certificate); a ConfigMap written by the program would
be a second, stale copy at the first renewal. ESO's ``kubernetes`` provider re-reads the source every
``REFRESH_INTERVAL`` instead.

What is made, for a copy named ``<name>`` of ``<source namespace>/<source secret>`` into ``<namespace>``:

* in ``<namespace>``: the ServiceAccount ``<name>-reader`` (no token automount: ESO requests its tokens), the
  SecretStore ``<name>`` (``kubernetes`` provider, reading ``<source namespace>`` as that account, the API server
  verified with ``kube-root-ca.crt``), the ExternalSecret ``<name>`` and so the Secret ``<name>`` with the one key
  ``ca.crt``;
* in ``<source namespace>``: the Role and RoleBinding ``<name>-reader-<namespace>`` that let that account ``get``
  the one source Secret by name, nothing else.

The store is namespaced, so only ExternalSecrets of ``<namespace>`` (which only the deployer writes: ESO's chart adds
no write access to the edit and admin roles) can use it. Only ``ca.crt`` is ever named (:data:`CA_KEY`, no
``dataFrom``); but Kubernetes RBAC cannot narrow a ``get`` to one key of a Secret, so the reader can read every key of
its source Secret: a source that also holds a private key (``tls.key`` of a serving certificate) must not be read
across namespaces. Copy it first inside its own namespace into a Secret that holds ``ca.crt`` only, and copy that
(:meth:`components.core.secrets.Secrets.vault_ca` does so for Vault's ``vault-tls``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import pulumi
import pulumi_kubernetes as k8s

from components.core.interfaces import SecretRef
from components.core.secrets import external_secrets
from components.kit import KitContext, custom_resource, recommended

CA_KEY = "ca.crt"
"""The one key ever copied: a CA certificate, public by nature."""
KUBE_ROOT_CA = "kube-root-ca.crt"
"""The ConfigMap Kubernetes publishes in every namespace with the API server's CA: how the store verifies the API server."""


@dataclass(frozen=True)
class CertificateSource:
    """The Secret whose ``ca.crt`` is copied, and what writes it (the copy waits for it)."""

    namespace: str
    secret: str
    ready: Sequence[pulumi.Resource] = ()


def reader_name(name: str) -> str:
    return f"{name}-reader"


def copy_ca_certificate(name: str, source: CertificateSource, namespace: str, ctx: KitContext, opts: pulumi.ResourceOptions,
                        after: Sequence[pulumi.Resource] = ()) -> tuple[SecretRef, pulumi.Resource]:
    """Copy ``ca.crt`` of ``source`` into the Secret ``name`` of ``namespace``; returns it and the ExternalSecret that
    writes it (registered with ``ctx.deliver``, so pods that mount it wait for it). ``after`` is what objects in
    ``namespace`` wait for (the namespace itself)."""
    reader = reader_name(name)
    there = pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=list(after)))
    account = k8s.core.v1.ServiceAccount(
        f"{namespace}-{reader}",
        metadata={"name": reader, "namespace": namespace, "labels": recommended(reader, "secret-consumer")},
        automount_service_account_token=False, opts=there)
    role_name = f"{reader}-{namespace}"
    labels = recommended(role_name, "rbac")
    role = k8s.rbac.v1.Role(
        f"{source.namespace}-{role_name}", metadata={"name": role_name, "namespace": source.namespace, "labels": labels},
        rules=[{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": [source.secret]}], opts=opts)
    binding = k8s.rbac.v1.RoleBinding(
        f"{source.namespace}-{role_name}", metadata={"name": role_name, "namespace": source.namespace, "labels": labels},
        role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role_name},
        subjects=[{"kind": "ServiceAccount", "name": reader, "namespace": namespace}],
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[role, account])))
    store = custom_resource(
        external_secrets.API, "SecretStore", name, namespace,
        {"provider": {"kubernetes": {
            "remoteNamespace": source.namespace,
            "server": {"caProvider": {"type": "ConfigMap", "name": KUBE_ROOT_CA, "key": "ca.crt"}},
            "auth": {"serviceAccount": {"name": reader}},
        }}},
        pulumi.ResourceOptions.merge(there, pulumi.ResourceOptions(depends_on=[binding])))
    copy = custom_resource(
        external_secrets.API, "ExternalSecret", name, namespace,
        {
            "refreshInterval": external_secrets.REFRESH_INTERVAL,
            "secretStoreRef": {"kind": "SecretStore", "name": name},
            "target": {"name": name, "creationPolicy": "Owner"},
            "data": [{"secretKey": CA_KEY, "remoteRef": {"key": source.secret, "property": CA_KEY}}],
        },
        pulumi.ResourceOptions.merge(there, pulumi.ResourceOptions(depends_on=[store, *source.ready])))
    ctx.deliver(namespace, name, copy)
    return SecretRef(name=name, namespace=namespace, keys=(CA_KEY,)), copy
