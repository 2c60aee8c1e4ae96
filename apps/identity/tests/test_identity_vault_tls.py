"""identity reaches Vault over TLS trusting exactly the CA of ``vault_ca_file`` (prod: the platform CA), on a REAL
OpenBao serving a certificate from a CA this test makes: the Kubernetes login, transit's sign and the key reads all
verify Vault's certificate and its name; an unrelated CA and another host name are refused; an https:// address
without a CA file, or a file that is no certificate, stops identity at start naming the setting."""

from __future__ import annotations

import json
import time

import hvac
import jwt
import pytest
import requests
from jwt import PyJWK

from soma_identity.app import signer_for, vault_client
from soma_identity.settings import IdentitySettings
from soma_service import SettingsError
from tests.openbao import make_ca, tls_server


@pytest.fixture(scope="module")
def tls_vault(tmp_path_factory):
    """(https address, the CA file that signed its certificate, a root client over verified TLS)."""
    folder = tmp_path_factory.mktemp("openbao-tls")
    platform_ca = make_ca("platform-ca-for-tests")
    with tls_server(folder, platform_ca) as server:
        ca_file = folder / "ca.crt"
        root = hvac.Client(url=server.addr, token=server.root_token, verify=str(ca_file))
        root.sys.enable_secrets_engine("transit", path="transit")
        root.sys.enable_auth_method("kubernetes", path="kubernetes")
        yield server.addr, ca_file, root


@pytest.fixture(scope="module")
def unrelated_ca_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("other-ca") / "ca.crt"
    path.write_bytes(make_ca("platform-ca-for-tests").pem)  # same name, another key: trust is the key, not the name
    return path


def settings(tmp_path, addr: str, ca_file, *, token: str | None = None, **extra) -> IdentitySettings:
    secrets = tmp_path / "secrets"
    secrets.mkdir(exist_ok=True)
    env = {"SOMA_ISSUER": "https://identity.prod.soma.local", "SOMA_ALLOWED_AUDIENCES": json.dumps(["soma-api"]),
           "SOMA_VAULT_ADDR": addr, "SOMA_DATABASE_DSN": "host=db dbname=identity", "SOMA_SECRETS_DIR": str(secrets),
           "SOMA_SIGNING_KEY_NAME": f"tls-{tmp_path.name}", "SOMA_KEY_PUBLISH_DELAY_SECONDS": "0",
           "SOMA_JWKS_CACHE_SECONDS": "0", **extra}
    if ca_file is not None:
        env["SOMA_VAULT_CA_FILE"] = str(ca_file)
    if token is not None:
        (secrets / "vault_token").write_text(token + "\n")
    else:
        account_token = tmp_path / "sa-token"
        account_token.write_text("a-service-account-jwt")
        env.update(SOMA_VAULT_KUBERNETES_ROLE="identity-signer", SOMA_VAULT_SERVICE_ACCOUNT_TOKEN_PATH=str(account_token))
    return IdentitySettings.from_env(env)


def test_signing_and_key_reads_work_over_tls_with_the_ca_that_signed_vaults_certificate(tls_vault, tmp_path):
    addr, ca_file, root = tls_vault
    signer = signer_for(settings(tmp_path, addr, ca_file, token=root.token), vault_client(settings(tmp_path, addr, ca_file, token=root.token)))
    signer.ensure_key()
    token = signer.sign({"sub": "u1", "aud": "soma-api", "exp": int(time.time()) + 60})
    (jwk,) = signer.jwks()["keys"]  # the key read, over the same verified TLS
    assert jwt.decode(token, PyJWK(jwk).key, algorithms=["ES256"], audience="soma-api")["sub"] == "u1"


def test_the_kubernetes_login_goes_over_the_same_verified_tls(tls_vault, unrelated_ca_file, tmp_path):
    """No Kubernetes API server here to review the pod's token, so Vault itself refuses the login; what matters is
    that the request reached Vault through the verified channel (a Vault answer), and not at all with another CA."""
    addr, ca_file, _ = tls_vault
    with pytest.raises(hvac.exceptions.VaultError) as answered:
        vault_client(settings(tmp_path, addr, ca_file))
    assert not isinstance(answered.value, requests.exceptions.SSLError)
    with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        vault_client(settings(tmp_path, addr, unrelated_ca_file))


def test_a_certificate_from_an_unrelated_ca_is_refused(tls_vault, unrelated_ca_file, tmp_path):
    addr, _, root = tls_vault
    config = settings(tmp_path, addr, unrelated_ca_file, token=root.token)
    with pytest.raises(requests.exceptions.SSLError, match="certificate verify failed"):
        signer_for(config, vault_client(config)).ensure_key()


def test_a_certificate_for_another_host_name_is_refused(tls_vault, tmp_path):
    """Vault's certificate names 127.0.0.1 only: reached as ``localhost`` (the same listener), the right CA is not
    enough."""
    addr, ca_file, root = tls_vault
    config = settings(tmp_path, addr.replace("127.0.0.1", "localhost"), ca_file, token=root.token)
    with pytest.raises(requests.exceptions.SSLError, match="[Hh]ostname mismatch|doesn't match|IP address mismatch"):
        signer_for(config, vault_client(config)).keyring(fresh=True)


def test_https_without_a_ca_file_is_refused_at_load_naming_the_setting(tmp_path):
    with pytest.raises(SettingsError) as refused:
        settings(tmp_path, "https://vault.soma-secrets.svc:8200", None, token="t")
    assert "SOMA_VAULT_CA_FILE" in str(refused.value) and "never the system store" in str(refused.value)


@pytest.mark.parametrize("content, said", [(b"", "holds no PEM certificate"),
                                           (b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n", "holds no PEM certificate"),
                                           (None, "cannot read the CA certificate file")])
def test_a_ca_file_that_is_no_certificate_is_refused_by_name(tmp_path, content, said):
    path = tmp_path / "ca.crt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SettingsError) as refused:
        settings(tmp_path, "https://vault.soma-secrets.svc:8200", path, token="t")
    message = str(refused.value)
    assert "SOMA_VAULT_CA_FILE" in message and said in message and str(path) in message


def test_a_ca_file_with_a_plain_http_address_is_refused(tmp_path):
    path = tmp_path / "ca.crt"
    path.write_bytes(make_ca("x").pem)
    with pytest.raises(SettingsError, match="vault_ca_file is set but vault_addr is not https://"):
        settings(tmp_path, "http://vault.soma-secrets.svc:8200", path, token="t")
