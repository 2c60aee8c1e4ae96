"""Auto-unseal is a stack setting: each seal type asks for its own fields and nothing else, a highly
available stack without auto-unseal needs a stated reason, and the choice reaches Vault's
configuration and environment (the transit stanza is proven on OpenBao in test_vault_unseal)."""
from __future__ import annotations

import json

import pytest

from components import settings
from components.config_schema import SettingsError
from components.core.secrets.vault_server import seal_credentials, seal_stanza
from components.settings import SealSettings
from tests.helpers import config_with
from tools.render import stack_config


def prod_with_seal(seal: dict) -> dict[str, str]:
    core = json.loads(stack_config("prod")["somaagenthub:core"])
    core["vault"]["seal"] = seal
    return config_with("prod", core=core)


def problems(config: dict[str, str], stack: str = "prod") -> list[str]:
    with pytest.raises(SettingsError) as caught:
        settings.parse(config, stack)
    return caught.value.problems


def test_prod_auto_unseals_through_transit():
    seal = settings.parse(stack_config("prod"), "prod").core.vault.seal
    assert seal.type == "transit" and seal.credentials_secret


def test_a_highly_available_stack_unsealed_by_people_must_say_why():
    found = problems(prod_with_seal({"type": "shamir"}))
    assert any(p.startswith("somaagenthub:core.vault.seal: highAvailability is on, so Vault must unseal without people")
               for p in found), found
    reasoned = settings.parse(prod_with_seal({"type": "shamir", "shamirReason": "bare-metal lab, no KMS"}), "prod")
    assert reasoned.core.vault.seal.shamir_reason == "bare-metal lab, no KMS"


@pytest.mark.parametrize(("seal", "message"), [
    ({"type": "transit", "address": "https://unseal.example.com"}, "seal type 'transit' needs keyName"),
    ({"type": "awskms", "region": "eu-west-1"}, "seal type 'awskms' needs kmsKeyId"),
    ({"type": "gcpckms", "project": "p", "region": "r", "keyRing": "k"}, "seal type 'gcpckms' needs cryptoKey"),
    ({"type": "azurekeyvault", "tenantId": "t", "vaultName": "v"}, "seal type 'azurekeyvault' needs keyName"),
    ({"type": "awskms", "region": "eu-west-1", "kmsKeyId": "k", "keyRing": "x"}, "keyRing does not apply to seal type 'awskms'"),
    ({"type": "transit", "address": "http://unseal.example.com", "keyName": "k"}, "the https URL of the Vault that holds the transit key"),
    ({"type": "vaultkms"}, "must be one of shamir, transit, awskms, gcpckms, azurekeyvault"),
])
def test_each_seal_type_asks_for_its_own_fields(seal, message):
    found = problems(prod_with_seal(seal))
    assert any(p.startswith("somaagenthub:core.vault.seal") and message in p for p in found), found


def test_dev_mode_unseals_itself_and_refuses_an_auto_unseal_seal():
    core = json.loads(stack_config("dev")["somaagenthub:core"])
    core["vault"]["seal"] = {"type": "awskms", "region": "eu-west-1", "kmsKeyId": "alias/x"}
    assert any("mode 'dev' unseals itself" in p for p in problems(config_with("dev", core=core), "dev"))


def test_each_seal_becomes_its_vault_stanza_with_no_credential_in_it():
    assert seal_stanza(SealSettings(type="shamir")) == ""
    aws = seal_stanza(SealSettings(type="awskms", region="eu-west-1", kms_key_id="alias/soma", credentials_secret="kms"))
    assert aws == 'seal "awskms" {\n  region = "eu-west-1"\n  kms_key_id = "alias/soma"\n}\n'
    gcp = seal_stanza(SealSettings(type="gcpckms", project="p", region="global", key_ring="ring", crypto_key="key",
                                   credentials_secret="gcp-kms"))
    assert 'credentials = "/vault/unseal/credentials.json"' in gcp and 'crypto_key = "key"' in gcp
    azure = seal_stanza(SealSettings(type="azurekeyvault", tenant_id="t", vault_name="v", key_name="k"))
    assert azure == 'seal "azurekeyvault" {\n  tenant_id = "t"\n  vault_name = "v"\n  key_name = "k"\n}\n'


def test_credentials_come_from_the_named_secret_as_environment_or_a_read_only_file():
    env, volumes, mounts = seal_credentials(SealSettings(type="transit", address="https://u", key_name="k",
                                                         credentials_secret="vault-unseal"))
    assert env == [{"envName": "VAULT_TOKEN", "secretName": "vault-unseal", "secretKey": "token"}] and not volumes
    env, volumes, mounts = seal_credentials(SealSettings(type="gcpckms", project="p", region="r", key_ring="k",
                                                         crypto_key="c", credentials_secret="gcp"))
    assert env == [] and volumes == [{"name": "unseal-credentials", "secret": {"secretName": "gcp"}}]
    assert mounts == [{"name": "unseal-credentials", "mountPath": "/vault/unseal", "readOnly": True}]
    assert seal_credentials(SealSettings(type="awskms", region="r", kms_key_id="k")) == ([], [], [])  # workload identity


def test_the_prod_plan_configures_vault_with_the_transit_seal_and_its_token(plans):
    seal = settings.parse(stack_config("prod"), "prod").core.vault.seal
    objects = [r["inputs"] for r in plans["prod"]["resources"] if r["inputs"].get("metadata", {}).get("name") in ("vault-config", "vault")]
    (config,) = [o for o in objects if o.get("kind") == "ConfigMap"]
    assert seal_stanza(seal) in config["data"]["extraconfig-from-values.hcl"]
    (statefulset,) = [o for o in objects if o.get("kind") == "StatefulSet"]
    env = statefulset["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": "VAULT_TOKEN", "valueFrom": {"secretKeyRef": {"name": seal.credentials_secret, "key": "token"}}} in env
