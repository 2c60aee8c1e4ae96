"""The image build, end to end (slow: two full builds; `make images-test`, which .ci/run calls).

The fixture app (tests/images/fixture_apps/hello: the layout every service under apps/ has) is built twice
from Debian's archive with the same SOURCE_DATE_EPOCH; the manifest digests must be equal. The image is
then checked as a node would run it: its layer unpacked, mounted read-only, the command run as UID 10001
with only /tmp writable, answering HTTP. Finally it is pushed to a local registry, signed, attested and
verified by the release step. Every real service under apps/ (identity, gateway) is built once the same
way and each imports all its modules, its locked wheels and their shared libraries from the read-only image
as UID 10001.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import tarfile
import time
import urllib.request
from pathlib import Path

import pytest

from components import catalog
from tools.images import apps, build, release

from tests.local_servers import free_port as _free_port

from .conftest import _tool, keys

FIXTURE = Path(__file__).resolve().parent / "fixture_apps" / "hello"

pytestmark = [
    pytest.mark.skipif(os.environ.get("SOMA_IMAGES_TEST") != "1", reason="slow (two image builds): run `make images-test`"),
    pytest.mark.skipif(any(_tool(t) is None for t in ("mmdebstrap", "buildah", "skopeo", "cosign", "docker-registry")),
                       reason="needs the image tools: `make image-tools` (tools/fetch_image_tools.sh)"),
]


@pytest.fixture(scope="module")
def two_builds(tmp_path_factory):
    app = apps.read_app(FIXTURE)
    epoch = build.source_date_epoch()
    first = build.build(app, tmp_path_factory.mktemp("first"), epoch)
    second = build.build(app, tmp_path_factory.mktemp("second"), epoch)
    print(f"\nbuild 1: {first.digest} {first.seconds} s; build 2: {second.digest} {second.seconds} s; "
          f"{first.compressed_size / 1e6:.1f} MB compressed, root filesystem {first.rootfs_size / 1e6:.1f} MB")
    return first, second


def _components(sbom: str) -> set[str]:
    return {c.get("purl", c["name"]) for c in json.loads(Path(sbom).read_text())["components"]}


def test_two_builds_of_one_commit_have_the_same_manifest_digest(two_builds):
    first, second = two_builds
    changed = _components(first.sbom) ^ _components(second.sbom)
    assert not changed, f"the Debian archive or a lock changed between the builds: {sorted(changed)}"
    assert first.digest == second.digest
    assert first.sbom_digest == second.sbom_digest


def _config(result) -> dict:
    digest, body = build.manifest(Path(result.layout))
    return json.loads((Path(result.layout) / "blobs/sha256" / body["config"]["digest"][7:]).read_text())


def test_the_image_runs_as_non_root_the_app_command_with_fixed_timestamps(two_builds):
    first, _ = two_builds
    config = _config(first)
    assert config["config"]["User"] == "10001:10001"
    assert config["config"]["Cmd"] == ["/opt/app/venv/bin/python", "-m", "soma_hello"]
    assert config["created"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(first.source_date_epoch))


def test_the_sbom_lists_the_locked_wheels_the_app_and_the_debian_packages(two_builds):
    first, _ = two_builds
    document = json.loads(Path(first.sbom).read_text())
    purls = _components(first.sbom)
    assert {"pkg:pypi/uvicorn@0.54.0", "pkg:pypi/click@8.5.1", "pkg:pypi/h11@0.16.0", "pkg:pypi/soma-hello@0.1.0"} <= purls
    assert "pkg:pypi/pip" not in " ".join(purls)  # pip installed the wheels but is not in the image
    debian = [p for p in purls if p.startswith("pkg:deb/debian/")]
    assert any(p.startswith("pkg:deb/debian/python3.11@") for p in debian) and len(debian) > 50
    assert document["components"][0]["type"] == "operating-system" and document["components"][0]["name"] == "debian"
    assert "timestamp" not in document["metadata"] and "serialNumber" not in document
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator
    validator = JsonStrictValidator(SchemaVersion.from_version(document["specVersion"]))
    assert validator.validate_str(Path(first.sbom).read_text()) is None


@contextlib.contextmanager
def read_only_root(layout: Path, folder: Path):
    """The image's single layer unpacked and mounted read-only, /tmp a separate writable tmpfs (as in the pod)."""
    _, body = build.manifest(layout)
    root = folder / "root"
    root.mkdir(parents=True)
    with tarfile.open(layout / "blobs/sha256" / body["layers"][0]["digest"][7:]) as layer:
        layer.extractall(root, filter="fully_trusted")
    mounts = []
    try:
        for cmd in (["mount", "--bind", str(root), str(root)], ["mount", "-o", "remount,bind,ro", str(root)],
                    ["mount", "-t", "tmpfs", "tmpfs", str(root / "tmp")]):
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                pytest.skip(f"cannot mount here ({' '.join(cmd[:3])}: {done.stderr.strip()})")
            mounts.insert(0, cmd[-1])
        yield root
    finally:
        for target in dict.fromkeys(mounts):
            subprocess.run(["umount", target], capture_output=True)


@pytest.fixture()
def unpacked(two_builds, tmp_path):
    with read_only_root(Path(two_builds[0].layout), tmp_path) as root:
        yield root


def test_the_image_serves_from_a_read_only_root_filesystem_as_uid_10001(two_builds, unpacked):
    first, _ = two_builds
    config = _config(first)["config"]
    assert subprocess.run(["touch", str(unpacked / "etc" / "written")], capture_output=True).returncode != 0
    port = _free_port()
    env = [*config["Env"], f"PORT={port}"]
    proc = subprocess.Popen(["chroot", "--userspec=10001:10001", str(unpacked), "/usr/bin/env", "-i", *env, *config["Cmd"]],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for _ in range(100):
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        else:
            proc.kill()
            pytest.fail(f"the app did not answer: {proc.communicate()[0].decode()[-2000:]}")
        assert body == b"ok\n"
        owner = subprocess.run(["ps", "-o", "uid=", "-p", str(proc.pid)], capture_output=True, text=True).stdout.strip()
        assert owner == "10001"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_the_built_image_is_pushed_signed_attested_verified_and_pinned(two_builds, registry, tmp_path):
    host, _ = registry
    first, _ = two_builds
    record = json.loads((Path(first.layout).parent / "build.json").read_text())
    record["git_commit"] = record["git_commit"].split("+")[0]  # the test tree may carry uncommitted edits
    out = tmp_path / "out" / "hello"
    out.mkdir(parents=True)
    (out / "build.json").write_text(json.dumps(record))
    key, public = keys(tmp_path / "platform")
    lock = tmp_path / "platform.lock.yaml"
    lock.write_text("charts: {}\nimages: {}\napps: {}\n")
    args = argparse.Namespace(out=str(tmp_path / "out"), registry=f"{host}/somaagenthub", key=key, public_key=public,
                              identity=None, issuer=None, insecure_registry=True, lock=str(lock))
    assert release.main(args) == 0
    assert catalog.load(lock).app_image("hello").digest == first.digest


IMPORT_EVERY_MODULE = """
import importlib, pkgutil, sys
package = importlib.import_module(sys.argv[1])
names = [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".") if not m.name.endswith("__main__")]
for name in names:
    importlib.import_module(name)
print(len(names) + 1, "modules")
"""


@pytest.fixture(scope="module")
def service_builds(tmp_path_factory):
    """Every service under apps/ (identity, gateway), built once as `make images` builds them."""
    services, _ = apps.discover()
    if not services:
        pytest.skip("no services under apps/ yet")
    out = tmp_path_factory.mktemp("services")
    return [(app, build.build(app, out)) for app in services]


def test_every_service_image_imports_all_its_modules_read_only_as_uid_10001(service_builds, tmp_path):
    """Each service's code, its locked wheels and their shared libraries load in the image as the pod runs it."""
    for app, result in service_builds:
        config = _config(result)["config"]
        package = config["Cmd"][2] if config["Cmd"][1:2] == ["-m"] else app.name
        with read_only_root(Path(result.layout), tmp_path / app.name) as root:
            done = subprocess.run(["chroot", "--userspec=10001:10001", str(root), "/usr/bin/env", "-i", *config["Env"],
                                   "/opt/app/venv/bin/python", "-c", IMPORT_EVERY_MODULE, package],
                                  capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{app.name}: {done.stderr[-3000:]}"
        print(f"{app.name}: {done.stdout.strip()} imported; {result.digest}, {result.compressed_size / 1e6:.1f} MB compressed, "
              f"{result.seconds} s")
