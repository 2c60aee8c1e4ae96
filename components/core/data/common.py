"""What the data stores share: who they are, how to reach the API server, resource blocks."""
from __future__ import annotations

from dataclasses import dataclass

from components.core.secrets import Secrets
from components.kit.labels import client_label
from components.kit import KitContext, Peer
from components.settings import CoreSettings

API_SERVER_PORTS = (443, 6443)
PROMETHEUS_LABELS = {"app.kubernetes.io/name": "prometheus"}


@dataclass(frozen=True)
class StoreContext:
    """Everything a store module needs, passed explicitly (no globals, no reaching into siblings)."""

    settings: CoreSettings
    ctx: KitContext
    secrets: Secrets

    @property
    def data_ns(self) -> str:
        return self.settings.namespaces.data.name

    @property
    def operators_ns(self) -> str:
        return self.settings.namespaces.operators.name

    @property
    def api_server(self) -> Peer:
        return Peer(cidr=self.settings.api_server_cidr)

    @property
    def prometheus(self) -> Peer:
        return Peer(namespace=self.settings.namespaces.observability.name, pods=PROMETHEUS_LABELS)


def client_peer(store: str) -> Peer:
    """Pods of any namespace that opt in as clients of ``store`` with the label ``somaagenthub.io/<store>-client: "true"``."""
    return Peer(any_namespace=True, pods=client_label(store))


