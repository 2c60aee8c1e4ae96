"""Secrets of Core: Vault, External Secrets, and the grants every other part uses.

``Secrets`` implements :class:`components.core.interfaces.SecretGrants`. Credentials are
generated here (pulumi-random), written to Vault (pulumi-vault), and reach a workload only as
an ESO-managed Secret in its own namespace; nothing secret is written to a stack file, a
ConfigMap or a Secret manifest.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random
import pulumi_vault as vault

from components.core.interfaces import IssuerRef, SecretRef, VaultAdmin
from components.core.secrets import external_secrets, vault_server
from components.core.secrets.certificate_copy import CertificateSource, copy_ca_certificate
from components.core.secrets.vault_access import (
    SNAPSHOT_POLICY, SecretConsumer, policy_hcl, policy_name, role_name, role_settings, snapshot_policy_hcl, snapshot_role_settings,
    vault_paths,
)
from components.kit import KitContext, Peer, allow_egress, allow_ingress, recommended
from components.settings import CoreSettings

API_SERVER_PORTS = (443, 6443)
VAULT_CA = "vault-ca"
"""The Secret (one key, ``ca.crt``) with the CA Vault's serving certificate chains to: first in Vault's namespace, copied
from ``vault-tls`` (which also holds Vault's private key, so no other namespace reads it), then in each consumer's."""


class VaultNotConfigured(RuntimeError):
    """A grant was asked for while ``core.vault.configure`` is false (the bootstrap's first step)."""


@dataclass
class _Consumer:
    service_account: str
    secrets: list[str] = field(default_factory=list)


class Secrets(pulumi.ComponentResource):
    """Vault server + External Secrets operator; ``password`` and ``grant`` for everyone else."""

    def __init__(self, settings: CoreSettings, ctx: KitContext, issuer: IssuerRef, opts: pulumi.ResourceOptions | None = None):
        """``issuer``: where Vault's serving certificate comes from in raft mode (the platform CA)."""
        super().__init__("somaagenthub:core:Secrets", "secrets", None, opts)
        self._child = pulumi.ResourceOptions(parent=self)
        self._settings = settings
        self._issuer = issuer
        self._ctx = ctx  # its delivered-Secret registry tells consumers what to wait for
        self._passwords: dict[str, random.RandomPassword] = {}
        self._consumers: dict[tuple[str, str], _Consumer] = {}
        self._snapshot_role: str | None = None
        self._vault_ca: dict[str, tuple[SecretRef, pulumi.Resource]] = {}
        self.namespace = settings.namespaces.secrets.name
        self.mount = settings.vault.kv_mount
        self.configured = settings.vault.configure
        root_token = self.password("vault-dev-root-token") if settings.vault.mode == "dev" else None
        self.vault_chart, self.endpoint = vault_server.server(settings, ctx, root_token, issuer, self._child)
        self.operator = external_secrets.operator(settings, ctx, self._child)
        self.network_policies = self._network_policies(settings)
        self.configuration = vault_server.configure(settings, root_token, self._child) if self.configured else None
        self.register_outputs({"vault": self.endpoint.url, "configured": self.configured})

    def admin(self) -> VaultAdmin | None:
        """Core's Vault for phases that configure an engine of their own (the mesh CA); None until configured."""
        if self.configuration is None:
            return None
        return VaultAdmin(provider=self.configuration.provider, kubernetes_auth_path=self.configuration.kubernetes_auth.path,
                          url=self.endpoint.url, tls=self.endpoint.ca_secret is not None, ca_issuer=self._issuer.name)

    def vault_ca(self, namespace: str, after: Sequence[pulumi.Resource] = ()) -> SecretRef | None:
        """Vault's CA certificate as the Secret ``vault-ca`` (key ``ca.crt``) in ``namespace``, for a client that
        verifies Vault's certificate (identity's ``SOMA_VAULT_CA_FILE``); None when Vault serves plain HTTP (dev
        mode). cert-manager writes ``ca.crt`` beside Vault's key in ``vault-tls``: that one Secret is read only inside
        Vault's namespace, into a ``vault-ca`` there, and consumer namespaces copy that one
        (components/core/secrets/certificate_copy.py). ``after`` is what objects in ``namespace`` wait for."""
        if self.endpoint.ca_secret is None:
            return None
        if self.namespace not in self._vault_ca:
            own = CertificateSource(self.namespace, self.endpoint.ca_secret, ready=(self.vault_chart,))
            self._vault_ca[self.namespace] = copy_ca_certificate(
                VAULT_CA, own, self.namespace, self._ctx, pulumi.ResourceOptions(parent=self, depends_on=[self.operator]))
        if namespace not in self._vault_ca:
            public = CertificateSource(self.namespace, VAULT_CA, ready=(self._vault_ca[self.namespace][1],))
            self._vault_ca[namespace] = copy_ca_certificate(
                VAULT_CA, public, namespace, self._ctx, pulumi.ResourceOptions(parent=self, depends_on=[self.operator]), after)
        return self._vault_ca[namespace][0]

    def password(self, name: str, length: int = 32) -> pulumi.Output[str]:
        """One RandomPassword per name; asking twice returns the same credential.

        Letters and digits only: the values end up in URLs (``MC_HOST_*``), SCRAM and XML
        configuration, where special characters need escaping that is easy to get wrong.
        """
        if name not in self._passwords:
            self._passwords[name] = random.RandomPassword(
                f"password-{name}", length=length, special=False, min_lower=4, min_upper=4, min_numeric=4, opts=self._child
            )
        return self._passwords[name].result

    def grant(
        self,
        service: str,
        namespace: str,
        service_account: str,
        secret: str,
        values: Mapping[str, pulumi.Input[str]],
        *,
        create_service_account: bool = False,
        secret_type: str | None = None,
        secret_labels: Mapping[str, str] | None = None,
        after: Sequence[pulumi.Resource] = (),
    ) -> SecretRef:
        """Write ``values`` to Vault and deliver them as the ESO-managed Secret ``<service>-<secret>``.

        The first grant of a consumer (``namespace``/``service``) also creates its policy, its
        Kubernetes-auth role and its ClusterSecretStore, and, when asked, its ServiceAccount
        (for consumers whose pods do not bring one, e.g. operator-managed pods). ``after`` names
        what the consumer's Kubernetes objects wait for, such as a later phase's namespace.
        """
        if self.configuration is None:
            raise VaultNotConfigured(
                f"grant {namespace}/{service}/{secret}: core.vault.configure is false; "
                "initialise Vault and set it to true (docs/runbooks/core-secrets.md)"
            )
        if not values:
            raise ValueError(f"grant {namespace}/{service}/{secret}: no values")
        record = self._consumers.get((namespace, service))
        consumer = SecretConsumer(service=service, namespace=namespace, service_account=service_account, secrets=(secret,))
        if record is None:
            record = _Consumer(service_account=service_account)
            self._consumers[(namespace, service)] = record
            self._new_consumer(consumer, create_service_account, after)
        elif record.service_account != service_account:
            raise ValueError(f"grant {namespace}/{service}: already granted to service account {record.service_account}, not {service_account}")
        if secret in record.secrets:
            raise ValueError(f"grant {namespace}/{service}/{secret}: granted twice")
        record.secrets.append(secret)
        path = vault_paths(consumer)[secret]
        cfg = self.configuration
        on_vault = pulumi.ResourceOptions(parent=self, provider=cfg.provider)
        written = vault.kv.SecretV2(
            f"{namespace}-{service}-{secret}",
            mount=cfg.mount.path,
            name=path,
            data_json=pulumi.Output.secret(pulumi.Output.json_dumps(dict(values))),
            # written, never read back: the deployer's policy (vault_access.writer_policy_hcl,
            # `python -m tools.deployer_policy`) grants create and update only
            disable_read=True,
            opts=on_vault,
        )
        name = f"{service}-{secret}"
        keys = tuple(sorted(values))
        delivered = external_secrets.external_secret(
            consumer, name, path, keys, pulumi.ResourceOptions(parent=self, depends_on=[written, *after]),
            secret_type=secret_type, secret_labels=secret_labels,
        )
        self._ctx.deliver(namespace, name, delivered)
        return SecretRef(name=name, namespace=namespace, keys=keys)

    def share(self, service: str, namespace: str, path: str, keys: tuple[str, ...], *, after: Sequence[pulumi.Resource] = (),
              labels: Mapping[str, str] | None = None) -> SecretRef:
        """Deliver a secret an administrator keeps in Vault at ``path`` as the ESO-managed Secret
        ``<service>-credentials`` in ``namespace``.

        For credentials the program cannot generate (the off-cluster backup target's keys): it never
        writes or reads them. The consumer is a service account of its own (``service``), whose
        Vault role reads that one path and nothing else, so the workloads of the namespace gain no
        Vault access from it. ``labels`` go on the delivered Secret, for consumers that find their Secrets by
        label (Argo CD reads only Secrets labelled ``app.kubernetes.io/part-of: argocd``).
        """
        if self.configuration is None:
            raise VaultNotConfigured(f"share {path} with {namespace}/{service}: core.vault.configure is false")
        if (namespace, service) in self._consumers:
            raise ValueError(f"share {path} with {namespace}/{service}: that consumer already exists")
        consumer = SecretConsumer(service=service, namespace=namespace, service_account=service,
                                  secrets=("credentials",), shared_path=path)
        self._consumers[(namespace, service)] = _Consumer(service_account=service, secrets=["credentials"])
        self._new_consumer(consumer, True, after)
        name = f"{service}-credentials"
        delivered = external_secrets.external_secret(consumer, name, path, tuple(sorted(keys)),
                                                     pulumi.ResourceOptions(parent=self, depends_on=list(after)),
                                                     secret_labels=labels)
        self._ctx.deliver(namespace, name, delivered)
        return SecretRef(name=name, namespace=namespace, keys=tuple(sorted(keys)))

    def raft_snapshot_role(self, namespace: str, service_account: str) -> str:
        """The Vault policy that may take Raft snapshots and nothing else, and the Kubernetes-auth
        role that grants it to exactly ``service_account`` in ``namespace``; returns the role name.

        For the snapshot CronJob (components/core/secrets/raft_snapshots.py), which logs in with a
        projected token of that service account; the policy and role are generated
        (vault_access.snapshot_policy_hcl, snapshot_role_settings) and proven on OpenBao
        (tests/core/test_raft_snapshots.py).
        """
        if self.configuration is None:
            raise VaultNotConfigured(f"raft snapshot role for {namespace}/{service_account}: core.vault.configure is false")
        if self._snapshot_role is not None:
            raise ValueError(f"the raft snapshot role already binds {self._snapshot_role}; one job takes the snapshots")
        self._snapshot_role = f"{namespace}/{service_account}"
        cfg = self.configuration
        settings = snapshot_role_settings(namespace, service_account)
        policy = vault.Policy(f"policy-{SNAPSHOT_POLICY}", name=SNAPSHOT_POLICY, policy=snapshot_policy_hcl(),
                              opts=pulumi.ResourceOptions(parent=self, provider=cfg.provider))
        vault.kubernetes.AuthBackendRole(
            f"role-{SNAPSHOT_POLICY}", backend=cfg.kubernetes_auth.path, **settings,
            opts=pulumi.ResourceOptions(parent=self, provider=cfg.provider, depends_on=[policy]),
        )
        return settings["role_name"]

    def _new_consumer(self, consumer: SecretConsumer, create_service_account: bool, after: Sequence[pulumi.Resource]) -> None:
        if policy_name(consumer) == SNAPSHOT_POLICY:
            raise ValueError(f"consumer {consumer.namespace}/{consumer.service}: its policy name {SNAPSHOT_POLICY!r} is the raft snapshot policy's")
        cfg = self.configuration
        on_vault = pulumi.ResourceOptions(parent=self, provider=cfg.provider)
        policy = vault.Policy(f"policy-{policy_name(consumer)}", name=policy_name(consumer), policy=policy_hcl(consumer, self.mount), opts=on_vault)
        role = vault.kubernetes.AuthBackendRole(
            f"role-{role_name(consumer)}", backend=cfg.kubernetes_auth.path, **role_settings(consumer),
            opts=pulumi.ResourceOptions(parent=self, provider=cfg.provider, depends_on=[policy]),
        )
        if create_service_account:
            k8s.core.v1.ServiceAccount(
                f"{consumer.namespace}-{consumer.service_account}",
                metadata={"name": consumer.service_account, "namespace": consumer.namespace,
                          "labels": recommended(consumer.service_account, "secret-consumer")},
                automount_service_account_token=False,
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(after)),
            )
        external_secrets.cluster_secret_store(consumer, self.endpoint, self.mount, pulumi.ResourceOptions(parent=self, depends_on=[role]))

    def _network_policies(self, settings: CoreSettings) -> list[pulumi.Resource]:
        """Vault: ESO in, raft peers both ways, the API server out (TokenReview, service registration).
        ESO: Vault and the API server out; the API server in to the webhook."""
        secrets_ns = settings.namespaces.secrets.name
        operators_ns = settings.namespaces.operators.name
        api = Peer(cidr=settings.api_server_cidr)
        vault_pods = vault_server.POD_LABELS
        eso = Peer(namespace=operators_ns, pods=external_secrets.CONTROLLER_LABELS)
        prometheus = Peer(namespace=settings.namespaces.observability.name, pods={"app.kubernetes.io/name": "prometheus"})
        peers = Peer(namespace=secrets_ns, pods=vault_pods)
        ports = (vault_server.PORT, vault_server.CLUSTER_PORT)
        c = self._child
        return [
            allow_ingress("vault-from-external-secrets", secrets_ns, vault_pods, [eso], [vault_server.PORT], c),
            allow_ingress("vault-metrics-scrape", secrets_ns, vault_pods, [prometheus], [vault_server.PORT], c),
            allow_ingress("vault-from-peers", secrets_ns, vault_pods, [peers], ports, c),
            allow_egress("vault-to-peers", secrets_ns, vault_pods, [peers], ports, c),
            allow_egress("vault-to-api-server", secrets_ns, vault_pods, [api], API_SERVER_PORTS, c),
            allow_egress("external-secrets-to-vault", operators_ns, external_secrets.CONTROLLER_LABELS,
                         [Peer(namespace=secrets_ns, pods=vault_pods)], [vault_server.PORT], c),
            allow_ingress("external-secrets-metrics-scrape", operators_ns, external_secrets.METRICS_PODS, [prometheus],
                          [external_secrets.METRICS_PORT], c),
            allow_egress("external-secrets-to-api-server", operators_ns, external_secrets.CONTROLLER_LABELS, [api], API_SERVER_PORTS, c),
            allow_egress("external-secrets-webhook-to-api-server", operators_ns, external_secrets.WEBHOOK_LABELS, [api], API_SERVER_PORTS, c),
            allow_ingress("external-secrets-webhook-from-api-server", operators_ns, external_secrets.WEBHOOK_LABELS, [api],
                          [external_secrets.WEBHOOK_PORT], c),
            allow_egress("external-secrets-cert-controller-to-api-server", operators_ns, external_secrets.CERT_CONTROLLER_LABELS,
                         [api], API_SERVER_PORTS, c),
        ]


__all__ = ["Secrets", "VaultNotConfigured"]
