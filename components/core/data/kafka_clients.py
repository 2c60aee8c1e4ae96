"""Kafka access for the services of later phases: a producer's credentials, the cluster CA and the flow to the brokers.

Core's listener (components/core/data/kafka.py) is TLS on 9093 with SCRAM-SHA-512 users. A later phase's service
that writes the audit topic gets, in its own namespace and only once it is deployed (a credential with no consumer
is only exposure, docs/architecture/compliance.md):

* the ``audit-producer`` password: one ``secrets.grant`` of the same generated value the KafkaUser is given, so a
  rotation of that password reaches the brokers and every producer from Vault alike;
* the cluster CA certificate (``ca.crt`` of Strimzi's ``<cluster>-cluster-ca-cert``), which Strimzi generates and
  renews in the data namespace: External Secrets' ``kubernetes`` provider copies that one key, through a reader that
  may ``get`` that one Secret by name (components/core/secrets/certificate_copy.py, the same copy Vault's CA takes).
  Strimzi itself copies its CA nowhere (its User Operator writes user Secrets in the Kafka namespace only), and the
  source holds no private key (Strimzi keeps the CA key in ``<cluster>-cluster-ca``), so it is read directly;
* the brokers' ingress from its pods, declared through ``ctx.flows`` (the egress half is the consumer's), beside
  the listener's own NetworkPolicy that Strimzi generates from ``networkPolicyPeers``.
"""
from __future__ import annotations

from typing import Sequence

import pulumi

from components.core.data.common import StoreContext
from components.core.data.kafka import (
    AUDIT_PRODUCER, AUDIT_TOPIC, BROKER_LABELS, CA_SECRET, TLS_PORT, KafkaStore, client_namespaces, password_name,
)
from components.core.interfaces import KafkaClientAccess, SecretRef
from components.core.secrets.certificate_copy import CertificateSource, copy_ca_certificate, reader_name
from components.kit import Peer, allow_ingress, selector
from components.kit.labels import client_label

CA_COPY = "kafka-cluster-ca"
"""The SecretStore, ExternalSecret and Secret in a consumer namespace that hold the copy of the cluster CA."""
CA_READER = reader_name(CA_COPY)
"""The ServiceAccount (consumer namespace) the store reads as, and its Role and RoleBinding (data namespace)."""


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
        source = CertificateSource(self._stores.data_ns, CA_SECRET, ready=(self._kafka.cluster,))
        self._ca[namespace], _ = copy_ca_certificate(CA_COPY, source, namespace, self._stores.ctx, self._opts, after)
        return self._ca[namespace]
