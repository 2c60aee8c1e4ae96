"""The mirror's SBOM of a third-party image lists what the image's package databases say is installed.

Every image here is a small OCI layout written by tests/mirror/oci_fixtures.py, with package databases
written for the test (Debian 12, distroless, Alpine 3.20, Python site-packages): no network, no scanner.
"""
from __future__ import annotations

import hashlib
import importlib.util
import json

import pytest

from tools.mirror.image_sbom import SbomError, Symlink, image_sbom

from .oci_fixtures import blob_path, opaque, read_json, whiteout, write_image, write_layout

DEBIAN_OS_RELEASE = b'''PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
NAME="Debian GNU/Linux"
VERSION_ID="12"
VERSION="12 (bookworm)"
VERSION_CODENAME=bookworm
ID=debian
HOME_URL="https://www.debian.org/"
'''

DPKG_STATUS = b"""Package: libc6
Status: install ok installed
Priority: optional
Section: libs
Installed-Size: 12986
Maintainer: GNU Libc Maintainers <debian-glibc@lists.debian.org>
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u10
Description: GNU C Library: Shared libraries
 Contains the standard libraries that are used by nearly all programs on
 the system.

Package: login
Status: install ok installed
Architecture: amd64
Source: shadow
Version: 1:4.13+dfsg1-1+b1
Description: system login tools

Package: vim-tiny
Status: deinstall ok config-files
Architecture: amd64
Source: vim
Version: 2:9.0.1378-2
Description: Vi IMproved - enhanced vi editor - compact version
"""

DEBIAN_BASE = {
    "usr/lib/os-release": DEBIAN_OS_RELEASE,
    "etc/os-release": Symlink("../usr/lib/os-release"),
    "var/lib/dpkg/status": DPKG_STATUS,
    "usr/bin/login": b"\x7fELF",
}

LIBC6 = "pkg:deb/debian/libc6@2.36-9+deb12u10?arch=amd64&distro=debian-12"
LOGIN = "pkg:deb/debian/login@1%3A4.13+dfsg1-1+b1?arch=amd64&distro=debian-12"

SITE = "usr/local/lib/python3.12/site-packages"


def metadata(name: str, version: str) -> bytes:
    return (f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: {name} for the test\n\n"
            f"Long description of {name}.\nName: not-a-header\n").encode()


def purls(document: dict) -> list[str]:
    return sorted(c["purl"] for c in document["components"] if "purl" in c)


def sbom_of(tmp_path, layers, **kwargs) -> dict:
    layout = tmp_path / "oci"
    digest = write_image(layout, layers, **kwargs)
    return image_sbom(layout, "upstream/thing", "1.2.3", digest)


def test_debian_image_lists_installed_dpkg_packages_and_its_operating_system(tmp_path):
    document = sbom_of(tmp_path, [DEBIAN_BASE])
    assert purls(document) == [LIBC6, LOGIN]  # vim-tiny is deinstalled: config files only
    assert [c for c in document["components"] if c["type"] == "operating-system"] == [
        {"type": "operating-system", "bom-ref": "os:debian@12", "name": "debian", "version": "12"}]
    login = next(c for c in document["components"] if c.get("purl") == LOGIN)
    assert login["version"] == "1:4.13+dfsg1-1+b1"
    assert login["properties"] == [{"name": "aquasecurity:trivy:SrcName", "value": "shadow"}]


def test_ubuntu_packages_are_named_after_the_os_release_id_and_version(tmp_path):
    document = sbom_of(tmp_path, [{
        "etc/os-release": b'PRETTY_NAME="Ubuntu 24.04.1 LTS"\nNAME="Ubuntu"\nVERSION_ID="24.04"\nID=ubuntu\nID_LIKE=debian\n',
        "var/lib/dpkg/status": b"Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nSource: glibc\n"
                               b"Version: 2.39-0ubuntu8.3\n",
    }])
    assert purls(document) == ["pkg:deb/ubuntu/libc6@2.39-0ubuntu8.3?arch=amd64&distro=ubuntu-24.04"]


def test_document_names_the_image_and_the_generator_and_has_no_timestamp_or_serial(tmp_path):
    layout = tmp_path / "oci"
    digest = write_image(layout, [DEBIAN_BASE])
    document = image_sbom(layout, "docker.io/library/debian", "12.11", digest)
    assert (document["bomFormat"], document["specVersion"]) == ("CycloneDX", "1.6")
    assert document["metadata"]["component"] == {"type": "container", "name": "docker.io/library/debian",
                                                 "version": "12.11", "bom-ref": f"image:docker.io/library/debian@{digest}"}
    assert [t["name"] for t in document["metadata"]["tools"]["components"]] == ["tools.mirror.image_sbom"]
    assert "timestamp" not in document["metadata"] and "serialNumber" not in document


def test_distroless_status_d_files_without_status_field_are_installed_packages(tmp_path):
    document = sbom_of(tmp_path, [{
        "etc/os-release": DEBIAN_OS_RELEASE,
        "var/lib/dpkg/status.d/libc6": b"Package: libc6\nVersion: 2.36-9+deb12u10\nArchitecture: arm64\n"
                                        b"Source: glibc\nDescription: GNU C Library: Shared libraries\n",
        "var/lib/dpkg/status.d/base-files": b"Package: base-files\nVersion: 12.4+deb12u11\nArchitecture: arm64\n",
    }], platform="linux/arm64")
    assert purls(document) == ["pkg:deb/debian/base-files@12.4+deb12u11?arch=arm64&distro=debian-12",
                               "pkg:deb/debian/libc6@2.36-9+deb12u10?arch=arm64&distro=debian-12"]


def test_alpine_image_lists_apk_packages_with_the_alpine_release(tmp_path):
    document = sbom_of(tmp_path, [{
        "etc/os-release": b'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME="Alpine Linux v3.20"\n',
        "lib/apk/db/installed": b"C:Q1rLe4mZ2y0Ww1aLqKbE8l5b3QX2k=\nP:musl\nV:1.2.5-r0\nA:x86_64\nS:411142\n"
                                b"T:the musl c library (libc) implementation\nL:MIT\no:musl\nF:lib\nR:ld-musl-x86_64.so.1\n\n"
                                b"P:busybox-binsh\nV:1.36.1-r29\nA:x86_64\no:busybox\nF:bin\nR:sh\n\n",
    }])
    assert purls(document) == ["pkg:apk/alpine/busybox-binsh@1.36.1-r29?arch=x86_64&distro=3.20.3",
                               "pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64&distro=3.20.3"]
    busybox = next(c for c in document["components"] if c.get("name") == "busybox-binsh")
    assert busybox["properties"] == [{"name": "aquasecurity:trivy:SrcName", "value": "busybox"}]
    assert {"name": "alpine", "version": "3.20.3"}.items() <= next(
        c for c in document["components"] if c["type"] == "operating-system").items()


def test_python_dist_info_under_site_and_dist_packages_only(tmp_path):
    document = sbom_of(tmp_path, [{
        f"{SITE}/pip-24.0.dist-info/METADATA": metadata("pip", "24.0"),
        f"{SITE}/typing_extensions-4.12.2.dist-info/METADATA": metadata("typing_extensions", "4.12.2"),
        "usr/lib/python3/dist-packages/requests-2.28.1.dist-info/METADATA": metadata("requests", "2.28.1"),
        "opt/app/build/lib/app-0.1.dist-info/METADATA": metadata("app", "0.1"),
    }])
    assert purls(document) == ["pkg:pypi/pip@24.0", "pkg:pypi/requests@2.28.1", "pkg:pypi/typing-extensions@4.12.2"]
    assert not [c for c in document["components"] if c["type"] == "operating-system"]  # no os-release: none invented


def test_a_later_layer_that_deletes_the_dpkg_database_or_a_dist_info_leaves_them_out(tmp_path):
    document = sbom_of(tmp_path, [
        {**DEBIAN_BASE, f"{SITE}/pip-24.0.dist-info/METADATA": metadata("pip", "24.0"),
         f"{SITE}/idna-3.7.dist-info/METADATA": metadata("idna", "3.7")},
        {whiteout("var/lib/dpkg/status"): b"", whiteout(f"{SITE}/pip-24.0.dist-info"): b""},
    ])
    assert purls(document) == ["pkg:pypi/idna@3.7"]


def test_a_later_layer_that_rewrites_the_dpkg_database_is_read_in_its_final_state(tmp_path):
    upgraded = DPKG_STATUS.replace(b"2.36-9+deb12u10", b"2.36-9+deb12u13") + (
        b"\nPackage: curl\nStatus: install ok installed\nArchitecture: amd64\nVersion: 7.88.1-10+deb12u12\n")
    document = sbom_of(tmp_path, [DEBIAN_BASE, {"var/lib/dpkg/status": upgraded}])
    assert purls(document) == ["pkg:deb/debian/curl@7.88.1-10+deb12u12?arch=amd64&distro=debian-12",
                               LIBC6.replace("deb12u10", "deb12u13"), LOGIN]


def test_an_opaque_directory_hides_lower_layers_but_not_its_own_layer(tmp_path):
    document = sbom_of(tmp_path, [
        {f"{SITE}/pip-24.0.dist-info/METADATA": metadata("pip", "24.0"),
         "usr/lib/python3/dist-packages/six-1.16.0.dist-info/METADATA": metadata("six", "1.16.0")},
        {f"{SITE}/urllib3-2.2.2.dist-info/METADATA": metadata("urllib3", "2.2.2"), opaque(SITE): b""},
    ])
    assert purls(document) == ["pkg:pypi/six@1.16.0", "pkg:pypi/urllib3@2.2.2"]


def test_a_later_layer_that_replaces_site_packages_by_a_link_hides_what_was_under_it(tmp_path):
    document = sbom_of(tmp_path, [
        {f"{SITE}/pip-24.0.dist-info/METADATA": metadata("pip", "24.0")},
        {SITE: Symlink("/opt/venv/lib/python3.12/site-packages")},
    ])
    assert purls(document) == []


def test_two_platform_index_lists_each_platforms_components_with_its_platform(tmp_path):
    def image(arch: str) -> list[dict]:
        status = DPKG_STATUS.replace(b"Architecture: amd64", f"Architecture: {arch}".encode())
        return [{**DEBIAN_BASE, "var/lib/dpkg/status": status, f"{SITE}/pip-24.0.dist-info/METADATA": metadata("pip", "24.0")}]

    layout = tmp_path / "oci"
    digest = write_layout(layout, {"linux/amd64": image("amd64"), "linux/arm64": image("arm64")}, attestations=True)
    document = image_sbom(layout, "upstream/thing", "1.2.3", digest)
    by_platform: dict[str, list[str]] = {}
    for component in document["components"]:
        [platform] = [p["value"] for p in component["properties"] if p["name"] == "soma:platform"]
        assert component["bom-ref"].endswith(f"#{platform}")
        by_platform.setdefault(platform, []).append(component.get("purl", component["name"]))
    assert sorted(by_platform) == ["linux/amd64", "linux/arm64"]  # the unknown/unknown attestations are skipped
    assert sorted(by_platform["linux/arm64"]) == ["debian", LIBC6.replace("amd64", "arm64"),
                                                  LOGIN.replace("amd64", "arm64"), "pkg:pypi/pip@24.0"]
    assert purls(document).count("pkg:pypi/pip@24.0") == 2
    refs = [c["bom-ref"] for c in document["components"]]
    assert len(refs) == len(set(refs)) == 8


def test_docker_manifest_list_and_docker_manifests_are_read(tmp_path):
    layout = tmp_path / "oci"
    digest = write_layout(layout, {"linux/arm/v7": [DEBIAN_BASE]}, docker=True)
    document = image_sbom(layout, "upstream/thing", "1.2.3", digest)
    assert purls(document) == [LIBC6, LOGIN]
    assert {c["bom-ref"].rpartition("#")[2] for c in document["components"]} == {"linux/arm/v7"}


def test_same_image_gives_the_same_bytes_with_components_sorted_by_bom_ref(tmp_path):
    layout = tmp_path / "oci"
    digest = write_layout(layout, {"linux/amd64": [DEBIAN_BASE], "linux/arm64": [DEBIAN_BASE]})
    first = json.dumps(image_sbom(layout, "upstream/thing", "1.2.3", digest), sort_keys=True)
    second = json.dumps(image_sbom(layout, "upstream/thing", "1.2.3", digest), sort_keys=True)
    assert first == second
    refs = [c["bom-ref"] for c in json.loads(first)["components"]]
    assert refs == sorted(refs) and len(refs) == 6


def test_uncompressed_tar_layers_are_read(tmp_path):
    assert purls(sbom_of(tmp_path, [DEBIAN_BASE], compression="none")) == [LIBC6, LOGIN]


def test_a_large_layer_with_bytes_after_the_end_of_archive_is_verified_whole_and_accepted(tmp_path):
    """tar stops reading at its end-of-archive blocks; the rest of the blob must still be hashed, not refused."""
    assert purls(sbom_of(tmp_path, [DEBIAN_BASE], compression="none", tar_padding=4 << 20)) == [LIBC6, LOGIN]


def test_a_tampered_layer_is_refused_naming_the_layout_and_the_blob(tmp_path):
    layout = tmp_path / "oci"
    digest = write_image(layout, [DEBIAN_BASE])
    layer = read_json(layout, digest)["layers"][0]["digest"]
    blob = blob_path(layout, layer)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF  # mid-stream: the digest, not a gzip error, must be what is reported
    blob.write_bytes(bytes(data))
    with pytest.raises(SbomError, match=f"{layout}.*{layer} does not match its digest"):
        image_sbom(layout, "upstream/thing", "1.2.3", digest)


def test_a_tampered_platform_manifest_is_refused(tmp_path):
    layout = tmp_path / "oci"
    digest = write_layout(layout, {"linux/amd64": [DEBIAN_BASE]})
    manifest = read_json(layout, digest)["manifests"][0]["digest"]
    path = blob_path(layout, manifest)
    path.write_bytes(path.read_bytes().replace(b'"schemaVersion": 2', b'"schemaVersion":  2'))
    with pytest.raises(SbomError, match=f"{manifest} does not match its digest"):
        image_sbom(layout, "upstream/thing", "1.2.3", digest)


def test_a_missing_layer_blob_is_refused(tmp_path):
    layout = tmp_path / "oci"
    digest = write_image(layout, [DEBIAN_BASE])
    layer = read_json(layout, digest)["layers"][0]["digest"]
    blob_path(layout, layer).unlink()
    with pytest.raises(SbomError, match=f"{layout}: blob {layer} is missing"):
        image_sbom(layout, "upstream/thing", "1.2.3", digest)


def test_a_digest_the_layout_does_not_hold_is_refused(tmp_path):
    layout = tmp_path / "oci"
    write_image(layout, [DEBIAN_BASE])
    other = "sha256:" + "0" * 64
    with pytest.raises(SbomError, match=f"index.json has no manifest {other}"):
        image_sbom(layout, "upstream/thing", "1.2.3", other)


def test_an_unsupported_layer_media_type_is_refused_by_name(tmp_path):
    layout = tmp_path / "oci"
    digest = write_image(layout, [DEBIAN_BASE])
    manifest = read_json(layout, digest)
    manifest["layers"][0]["mediaType"] = "application/vnd.oci.image.layer.v1.tar+bzip2"
    data = json.dumps(manifest).encode()
    new_digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blob_path(layout, new_digest).write_bytes(data)
    index = json.loads((layout / "index.json").read_text())
    index["manifests"][0].update(digest=new_digest, size=len(data))
    (layout / "index.json").write_text(json.dumps(index))
    with pytest.raises(SbomError, match=r"unsupported media type application/vnd\.oci\.image\.layer\.v1\.tar\+bzip2"):
        image_sbom(layout, "upstream/thing", "1.2.3", new_digest)


def test_zstd_layers_are_read_with_zstandard_and_refused_clearly_without_it(tmp_path):
    layout = tmp_path / "oci"
    digest = write_image(layout, [DEBIAN_BASE], compression="zstd")
    if importlib.util.find_spec("zstandard") is None:
        with pytest.raises(SbomError, match="zstd-compressed .* zstandard module is not installed"):
            image_sbom(layout, "upstream/thing", "1.2.3", digest)
    else:
        assert purls(image_sbom(layout, "upstream/thing", "1.2.3", digest)) == [LIBC6, LOGIN]


def test_a_dpkg_database_without_os_release_is_refused_rather_than_guessing_the_distribution(tmp_path):
    with pytest.raises(SbomError, match="dpkg database but no os-release"):
        sbom_of(tmp_path, [{"var/lib/dpkg/status": DPKG_STATUS}])
