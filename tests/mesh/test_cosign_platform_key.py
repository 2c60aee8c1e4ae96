"""The platform key, in the form the ClusterImagePolicy carries it, really verifies a signed image.

A real OCI registry (Debian's ``docker-registry``, on 127.0.0.1) receives a small image this test builds
(one layer, pushed through the registry API); ``cosign`` (Debian 13's package, ``make cosign``) signs it
by digest with a freshly generated key pair. The public key is then taken from the ``key.data`` of the
platform ClusterImagePolicy the program generates for that key, and ``cosign verify --key`` accepts the
signature with it and refuses it with another key. policy-controller verifies a ``key`` authority with
the same sigstore-go/cosign verification code; the transparency log is left out on both sides, as the
generated key authority has no ``ctlog`` (policy-controller skips the log then; cosign is told to).
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import urllib.request
from pathlib import Path

import pytest

from components.mesh.signatures.policies import platform_authority
from tests.local_registry import local_registry
from components.settings import PlatformSigningKey, Resources, SignatureSettings

REPO = Path(__file__).resolve().parents[2]


def _tool(name: str, env: str) -> str | None:
    for candidate in (os.environ.get(env), shutil.which(name), str(REPO / ".tools" / "bin" / name)):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


COSIGN = _tool("cosign", "COSIGN")
REGISTRY = _tool("docker-registry", "DOCKER_REGISTRY")
pytestmark = pytest.mark.skipif(
    COSIGN is None or REGISTRY is None,
    reason="needs cosign (`make cosign`: Debian 13's package, unpacked into .tools/bin) and Debian's docker-registry "
           "(`apt-get install docker-registry`)",
)


@pytest.fixture()
def registry(tmp_path):
    with local_registry(REGISTRY, tmp_path) as (host, _):
        yield host


def _push_blob(host: str, repo: str, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    start = urllib.request.Request(f"http://{host}/v2/{repo}/blobs/uploads/", method="POST")
    location = urllib.request.urlopen(start, timeout=10).headers["Location"]
    url = location if location.startswith("http") else f"http://{host}{location}"
    sep = "&" if "?" in url else "?"
    put = urllib.request.Request(f"{url}{sep}digest={digest}", data=data, method="PUT",
                                 headers={"Content-Type": "application/octet-stream"})
    urllib.request.urlopen(put, timeout=10)
    return digest


def push_image(host: str, repo: str, tag: str) -> str:
    """A one-layer OCI image (a text file), pushed by the registry API; returns the manifest digest."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        body = b"signed by the platform key\n"
        info = tarfile.TarInfo("hello.txt")
        info.size, info.mtime = len(body), 0
        tar.addfile(info, io.BytesIO(body))
    layer = gzip.compress(raw.getvalue(), mtime=0)
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()]}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _push_blob(host, repo, config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": _push_blob(host, repo, layer), "size": len(layer)}],
    }).encode()
    put = urllib.request.Request(f"http://{host}/v2/{repo}/manifests/{tag}", data=manifest, method="PUT",
                                 headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    return urllib.request.urlopen(put, timeout=10).headers["Docker-Content-Digest"]


def cosign(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "COSIGN_PASSWORD": "", "HOME": str(cwd)}
    return subprocess.run([COSIGN, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def generate_key(folder: Path) -> tuple[Path, str]:
    folder.mkdir()
    assert cosign("generate-key-pair", cwd=folder).returncode == 0
    return folder / "cosign.key", (folder / "cosign.pub").read_text()


def test_the_generated_policy_key_verifies_a_platform_signature_and_another_key_does_not(registry, tmp_path):
    private, public = generate_key(tmp_path / "platform")
    _, other_public = generate_key(tmp_path / "other")
    digest = push_image(registry, "mirror/hello", "1.0.0")
    image = f"{registry}/mirror/hello@{digest}"
    signed = cosign("sign", "--yes", "--key", str(private), "--tlog-upload=false", "--allow-insecure-registry", image, cwd=tmp_path)
    assert signed.returncode == 0, signed.stderr

    settings = SignatureSettings(verify_by="platformKey", mode="enforce", no_match_policy="deny", failure_policy="Fail", replicas=2,
                                 resources=Resources("100m", "128Mi", "200m", "512Mi"),
                                 platform_key=PlatformSigningKey(public_key_pem=public))
    policy_key = platform_authority(settings).as_spec()["key"]["data"]
    (tmp_path / "policy.pub").write_text(policy_key)
    (tmp_path / "other.pub").write_text(other_public)

    def verify(key: str) -> subprocess.CompletedProcess:
        return cosign("verify", "--key", key, "--insecure-ignore-tlog", "--allow-insecure-registry", image, cwd=tmp_path)

    accepted = verify("policy.pub")
    assert accepted.returncode == 0, accepted.stderr
    assert json.loads(accepted.stdout)[0]["critical"]["image"]["docker-manifest-digest"] == digest
    refused = verify("other.pub")
    assert refused.returncode != 0 and "no matching signatures" in refused.stderr
    unsigned = push_image(registry, "mirror/unsigned", "1.0.0")
    assert cosign("verify", "--key", "policy.pub", "--insecure-ignore-tlog", "--allow-insecure-registry",
                  f"{registry}/mirror/unsigned@{unsigned}", cwd=tmp_path).returncode != 0
