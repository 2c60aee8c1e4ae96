"""The one way a CA certificate reaches another namespace (components/core/secrets/certificate_copy.py), under the
mock runtime: what it makes on each side, that it names ``ca.crt`` and nothing else, and that pods mounting the copy
wait for it. Its two users are rendered through the program: Kafka's cluster CA (tests/core/test_kafka_clients.py,
tests/test_agents_services.py) and Vault's CA (tests/test_agents_services.py, "Vault over TLS")."""
from __future__ import annotations

import pulumi
import pytest

from components import catalog, settings
from components.core import telemetry_for
from components.core.interfaces import SecretRef
from components.core.secrets.certificate_copy import CertificateSource, copy_ca_certificate
from components.kit import KitContext
from tests.helpers import objects
from tools import mock_runtime
from tools.render import build_plan, stack_config


@pytest.fixture(scope="module")
def copied():
    parsed = settings.parse(stack_config("dev"), "dev")
    ctx = KitContext.from_settings(parsed, catalog.load(), telemetry_for(parsed.core))
    out = {}

    def program():
        issuer = pulumi.CustomResource("test:index:Issuer", "writes-the-source")  # the operator that writes the source
        out["ref"], out["copy"] = copy_ca_certificate("web-ca", CertificateSource("ns-a", "web-tls", ready=(issuer,)),
                                                      "ns-b", ctx, pulumi.ResourceOptions())

    plan = build_plan("dev", mock_runtime.run(program, "dev", {}), {})
    return plan, ctx, out


def test_the_copy_is_one_ca_crt_key_read_as_a_reader_that_may_get_one_secret(copied):
    plan, _, out = copied
    assert out["ref"] == SecretRef("web-ca", "ns-b", ("ca.crt",))
    by_kind = {(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"]): o for o in objects(plan)}
    assert sorted(by_kind) == [("ExternalSecret", "ns-b", "web-ca"), ("Role", "ns-a", "web-ca-reader-ns-b"),
                               ("RoleBinding", "ns-a", "web-ca-reader-ns-b"), ("SecretStore", "ns-b", "web-ca"),
                               ("ServiceAccount", "ns-b", "web-ca-reader")]
    copy = by_kind[("ExternalSecret", "ns-b", "web-ca")]["spec"]
    assert copy["data"] == [{"secretKey": "ca.crt", "remoteRef": {"key": "web-tls", "property": "ca.crt"}}]
    assert "dataFrom" not in copy and copy["target"] == {"name": "web-ca", "creationPolicy": "Owner"}
    store = by_kind[("SecretStore", "ns-b", "web-ca")]["spec"]["provider"]["kubernetes"]
    assert store["remoteNamespace"] == "ns-a" and store["auth"] == {"serviceAccount": {"name": "web-ca-reader"}}
    assert by_kind[("Role", "ns-a", "web-ca-reader-ns-b")]["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["web-tls"]}]
    assert by_kind[("RoleBinding", "ns-a", "web-ca-reader-ns-b")]["subjects"] == [
        {"kind": "ServiceAccount", "name": "web-ca-reader", "namespace": "ns-b"}]
    assert by_kind[("ServiceAccount", "ns-b", "web-ca-reader")]["automountServiceAccountToken"] is False


def test_the_copy_waits_for_its_source_and_pods_that_mount_it_wait_for_the_copy(copied):
    plan, ctx, out = copied
    waits = {r["name"]: {d.rsplit("::", 1)[1] for d in r["dependencies"]} for r in plan["resources"]}
    # the copy after its store and the source's writer; the store after the reader's binding
    assert waits["ns-b-externalsecret-web-ca"] == {"ns-b-secretstore-web-ca", "writes-the-source"}
    assert waits["ns-b-secretstore-web-ca"] == {"ns-a-web-ca-reader-ns-b"}
    assert ctx.delivered_secrets[("ns-b", "web-ca")] is out["copy"]
