"""identity's Vault policies, loaded into OpenBao: the service signs but cannot rotate or export; the job rotates."""

from __future__ import annotations

import hvac
import pytest

from soma_identity.keys import TransitSigner
from soma_identity.vault_policy import rotation_policy, signer_policy


def token_with(root: hvac.Client, name: str, policy: str) -> hvac.Client:
    root.sys.create_or_update_policy(name, policy)
    token = root.auth.token.create(policies=[name], ttl="10m")["auth"]["client_token"]
    return hvac.Client(url=root.url, token=token)


def test_the_service_signs_and_publishes_but_cannot_rotate_reconfigure_or_export(vault):
    _, root = vault
    key = "policy-checked"
    rotator = TransitSigner(token_with(root, "identity-rotation", rotation_policy(key)), key_name=key, algorithm="ES256")
    rotator.ensure_key()
    service = TransitSigner(token_with(root, "identity-signer", signer_policy(key)), key_name=key, algorithm="ES256")
    assert service.sign({"sub": "x"}).count(".") == 2
    assert service.jwks()["keys"][0]["kid"] == f"{key}-v1"
    with pytest.raises(hvac.exceptions.Forbidden):
        service.rotate()
    with pytest.raises(hvac.exceptions.Forbidden):
        service.client.secrets.transit.export_key(key, key_type="signing-key")
    with pytest.raises(hvac.exceptions.Forbidden):
        service.client.secrets.transit.update_key_configuration(key, exportable=True)
    with pytest.raises(hvac.exceptions.Forbidden):  # another key in the same mount
        service.client.secrets.transit.sign_data("some-other-key", hash_input="YQ==")

    assert rotator.rotate() == 2
    assert rotator.retire(grace=0, now=10**10) == 2
    with pytest.raises(hvac.exceptions.Forbidden):  # the rotation job cannot sign tokens
        rotator.sign({"sub": "x"})
