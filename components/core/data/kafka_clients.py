"""Kafka access for the services of later phases: a producer's credentials, the cluster CA and the flow to the brokers.

Core's listener (components/core/data/kafka.py) is TLS on 9093 with SCRAM-SHA-512 users. A later phase's service
that writes the audit topic gets, in its own namespace and only once it is deployed (a credential with no consumer
is only exposure, docs/architecture/compliance.md):

* the ``audit-producer`` password: one ``secrets.grant`` of the same generated value the KafkaUser is given, so a
  rotation of that password reaches the brokers and every producer from Vault alike;
* the cluster CA certificate (``ca.crt`` of Strimzi's ``<cluster>-cluster-ca-cert``), which Strimzi generates and
  renews in the data namespace: External Secrets' ``kubernetes`` provider copies that one key. A SecretStore in the
  consumer's namespace reads the data namespace as a ServiceAccount of its own, whose Role there may ``get`` that
  one Secret by name and nothing else; the store is namespaced, so only ExternalSecrets of that namespace (which
  only the deployer writes: ESO's chart adds no write access to the edit and admin roles) can use it. Strimzi
  itself copies its CA nowhere (its User Operator writes user Secrets in the Kafka namespace only), and a
  ConfigMap written here would be a second, stale copy at the first CA renewal;
* the brokers' ingress from its pods, declared through ``ctx.flows`` (the egress half is the consumer's), beside
  the listener's own NetworkPolicy that Strimzi generates from ``networkPolicyPeers``.
"""
from __future__ import annotations

from typing import Sequence

import pulumi
import pulumi_kubernetes as k8s

from components.core.data.common import StoreContext
from components.core.data.kafka import (
    AUDIT_PRODUCER, AUDIT_TOPIC, BROKER_LABELS, CA_SECRET, TLS_PORT, KafkaStore, client_namespaces, password_name,
)
from components.core.interfaces import KafkaClientAccess, SecretRef
from components.core.secrets import external_secrets
from components.kit import Peer, allow_ingress, custom_resource, recommended, selector
from components.kit.labels import client_label

CA_COPY = "kafka-cluster-ca"
"""The SecretStore, ExternalSecret and Secret in a consumer namespace that hold the copy of the cluster CA."""
CA_READER = "kafka-cluster-ca-reader"
"""The ServiceAccount (consumer namespace) the store reads as, and its Role and RoleBinding (data namespace)."""
CA_KEY = "ca.crt"
KUBE_ROOT_CA = "kube-root-ca.crt"
"""The ConfigMap Kubernetes publishes in every namespace with the API server's CA: how the store verifies the API server."""


class KafkaClients:
    """Hands out :class:`KafkaClientAccess`, one consumer at a time; the CA copy is made once per namespace."""

    def __init__(self, stores: StoreContext, kafka: KafkaStore, opts: pulumi.ResourceOptions):
        self._stores = stores
        self._kafka = kafka
        self._opts = opts
        self._ca: dict[str, SecretRef] = {}
        self._producers: set[tuple[str, str]] = set()

    def producer(self, consumer: str, namespace: str, after: Sequence[pulumi.Resource] = ()) -> KafkaClientAccess:
        """Access for the service ``consumer`` (a kit workload of that name, whose pods carry ``selector(consumer)``)
        in ``namespace`` to write the audit topic as ``audit-producer``. Its password arrives as the Secret
        ``<consumer>-kafka``, delivered through its ESO service account ``<consumer>-secrets`` (the one its other
        grants use); ``after`` is what objects in ``namespace`` wait for (the namespace itself)."""
        stores = self._stores
        admitted = client_namespaces(stores)
        if namespace not in admitted:
            raise ValueError(f"kafka producer {namespace}/{consumer}: the listener admits clients from {', '.join(admitted)} only")
        if (namespace, consumer) in self._producers:
            raise ValueError(f"kafka producer {namespace}/{consumer}: asked for twice")
        self._producers.add((namespace, consumer))
        password = stores.secrets.grant(consumer, namespace, f"{consumer}-secrets", "kafka",
                                        {"password": stores.secrets.password(password_name(AUDIT_PRODUCER))},
                                        create_service_account=True, after=after)
        allow_ingress(f"kafka-from-{namespace}-{consumer}", stores.data_ns, BROKER_LABELS,
                      [Peer(namespace=namespace, pods=selector(consumer))], [TLS_PORT], self._opts, ledger=stores.ctx.flows)
        return KafkaClientAccess(
            bootstrap=self._kafka.bootstrap, topic=AUDIT_TOPIC, username=AUDIT_PRODUCER, password=password,
            ca=self._cluster_ca(namespace, after), peer=Peer(namespace=stores.data_ns, pods=dict(BROKER_LABELS)),
            port=TLS_PORT, client_labels=client_label("kafka"),
        )

    def _cluster_ca(self, namespace: str, after: Sequence[pulumi.Resource]) -> SecretRef:
        if namespace in self._ca:
            return self._ca[namespace]
        stores, data_ns = self._stores, self._stores.data_ns
        there = pulumi.ResourceOptions.merge(self._opts, pulumi.ResourceOptions(depends_on=list(after)))
        account = k8s.core.v1.ServiceAccount(
            f"{namespace}-{CA_READER}",
            metadata={"name": CA_READER, "namespace": namespace, "labels": recommended(CA_READER, "secret-consumer")},
            automount_service_account_token=False, opts=there)
        role_name = f"{CA_READER}-{namespace}"
        labels = recommended(role_name, "rbac")
        role = k8s.rbac.v1.Role(
            f"{data_ns}-{role_name}", metadata={"name": role_name, "namespace": data_ns, "labels": labels},
            rules=[{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": [CA_SECRET]}], opts=self._opts)
        binding = k8s.rbac.v1.RoleBinding(
            f"{data_ns}-{role_name}", metadata={"name": role_name, "namespace": data_ns, "labels": labels},
            role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role_name},
            subjects=[{"kind": "ServiceAccount", "name": CA_READER, "namespace": namespace}],
            opts=pulumi.ResourceOptions.merge(self._opts, pulumi.ResourceOptions(depends_on=[role, account])))
        store = custom_resource(
            external_secrets.API, "SecretStore", CA_COPY, namespace,
            {"provider": {"kubernetes": {
                "remoteNamespace": data_ns,
                "server": {"caProvider": {"type": "ConfigMap", "name": KUBE_ROOT_CA, "key": "ca.crt"}},
                "auth": {"serviceAccount": {"name": CA_READER}},
            }}},
            pulumi.ResourceOptions.merge(there, pulumi.ResourceOptions(depends_on=[binding])))
        copy = custom_resource(
            external_secrets.API, "ExternalSecret", CA_COPY, namespace,
            {
                "refreshInterval": external_secrets.REFRESH_INTERVAL,
                "secretStoreRef": {"kind": "SecretStore", "name": CA_COPY},
                "target": {"name": CA_COPY, "creationPolicy": "Owner"},
                "data": [{"secretKey": CA_KEY, "remoteRef": {"key": CA_SECRET, "property": CA_KEY}}],
            },
            pulumi.ResourceOptions.merge(there, pulumi.ResourceOptions(depends_on=[store, self._kafka.cluster])))
        stores.ctx.deliver(namespace, CA_COPY, copy)
        self._ca[namespace] = SecretRef(name=CA_COPY, namespace=namespace, keys=(CA_KEY,))
        return self._ca[namespace]
