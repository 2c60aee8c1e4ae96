"""A CycloneDX SBOM for a third-party image, generated from the image's own package databases.

The mirror (issue 14) attaches an SBOM to every image it copies into the platform registry; when the
upstream publishes none, this module writes one from the OCI image layout that ``skopeo copy --all``
left on disk, without syft or trivy. Each platform image's layers are applied in order, keeping only
the files read here and honouring OCI whiteouts (``.wh.<name>`` deletes a path of a lower layer,
``.wh..wh..opq`` empties a directory of lower layers), so a package database that a later layer
deletes or replaces is read as the running container would see it. What is read:

- ``etc/os-release`` (or ``usr/lib/os-release``): the operating-system component scanners use to
  choose their advisories, and the distro qualifier of every OS package's purl;
- ``var/lib/dpkg/status`` and distroless's ``var/lib/dpkg/status.d/*``: Debian and Ubuntu packages;
- ``lib/apk/db/installed``: Alpine packages;
- ``*.dist-info/METADATA`` directly under a ``site-packages`` or ``dist-packages`` folder: Python packages.

Every blob is checked against its sha256 digest as it is read; layers may be uncompressed or gzip tar,
and zstd tar only where the ``zstandard`` module is importable.

Known gaps, each a component the document does not list:
- Go binaries: a static Go binary's modules would need ``go version -m``-style build-info parsing;
- Python's legacy ``.egg-info`` distributions, and packages outside site-/dist-packages;
- RPM databases (Fedora, RHEL, UBI images), and other ecosystems (npm, jars, Rust binaries);
- a wanted file that is a hard link to a file this module did not keep, or a symlink out of the kept files.
"""
from __future__ import annotations

import hashlib
import io
import json
import posixpath
import re
import shlex
import tarfile
import zlib
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path
from typing import BinaryIO, Iterator

from tools.images.sbom import dpkg_packages, purl_version

TOOL = {"type": "application", "group": "somaagenthub", "name": "tools.mirror.image_sbom",
        "description": "CycloneDX SBOM from an OCI image layout's package databases (dpkg, apk, Python dist-info)"}

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFESTS = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEXES = (OCI_INDEX, DOCKER_MANIFEST_LIST)

LAYER_COMPRESSION = {
    "application/vnd.oci.image.layer.v1.tar": None,
    "application/vnd.oci.image.layer.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.v1.tar+zstd": "zstd",
    "application/vnd.oci.image.layer.nondistributable.v1.tar": None,
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip": "gzip",
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd": "zstd",
    "application/vnd.docker.image.rootfs.diff.tar.gzip": "gzip",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip": "gzip",
}

OS_RELEASE = ("etc/os-release", "usr/lib/os-release")
DPKG_STATUS = "var/lib/dpkg/status"
DPKG_STATUS_D = "var/lib/dpkg/status.d"
APK_INSTALLED = "lib/apk/db/installed"
PYTHON_SITES = ("site-packages", "dist-packages")
OPAQUE = ".wh..wh..opq"
WHITEOUT = ".wh."


class SbomError(RuntimeError):
    """The layout cannot be read: a missing blob, a digest mismatch, an unsupported media type."""


@dataclass(frozen=True)
class Symlink:
    """A kept path that is a symbolic link; resolved among the kept files when read."""

    target: str


Files = dict[str, "bytes | Symlink"]


def image_sbom(layout: Path, name: str, version: str, digest: str) -> dict:
    """One CycloneDX 1.6 document for the image ``digest`` in the OCI layout at ``layout``.

    No timestamp, no serial number and components sorted by bom-ref, so one image always gives the same
    bytes under ``json.dumps(..., sort_keys=True)``. For a multi-platform index every platform's components
    are listed, each with a ``soma:platform`` property and a bom-ref ending in ``#<platform>``.
    """
    layout = Path(layout)
    top = _top_descriptor(layout, digest)
    components: list[dict] = []
    if _media_type(layout, top) in INDEXES:
        for platform, manifest in _platform_manifests(layout, top):
            for component in _image_components(layout, manifest):
                component["bom-ref"] = f"{component['bom-ref']}#{platform}"
                component.setdefault("properties", []).append({"name": "soma:platform", "value": platform})
                components.append(component)
    else:
        components = _image_components(layout, _manifest(layout, top))
    return {
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "version": 1,
        "metadata": {
            "tools": {"components": [TOOL]},
            "component": {"type": "container", "bom-ref": f"image:{name}@{digest}", "name": name, "version": version},
        },
        "components": sorted(components, key=lambda c: c["bom-ref"]),
    }


# --- the layout: index.json, manifests, blobs ----------------------------------------------------------


def _top_descriptor(layout: Path, digest: str) -> dict:
    """The index.json entry of ``digest``: the SBOM must describe the image the mirror copies, no other."""
    try:
        index = json.loads((layout / "index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise SbomError(f"{layout}: no readable index.json ({err})") from err
    entries = index.get("manifests") or []
    for entry in entries:
        if entry.get("digest") == digest:
            return entry
    found = ", ".join(str(e.get("digest")) for e in entries) or "none"
    raise SbomError(f"{layout}: index.json has no manifest {digest} (it lists {found})")


def _media_type(layout: Path, descriptor: dict) -> str:
    media_type = descriptor.get("mediaType")
    if not media_type:
        raise SbomError(f"{layout}: descriptor {descriptor.get('digest')} has no mediaType")
    return media_type


def _platform_manifests(layout: Path, descriptor: dict) -> Iterator[tuple[str, dict]]:
    """``(platform, manifest)`` for each image of an index, without buildkit's unknown/unknown attestations."""
    index = _json_blob(layout, descriptor)
    found = False
    for entry in index.get("manifests") or []:
        platform = entry.get("platform") or {}
        if (platform.get("os"), platform.get("architecture")) == ("unknown", "unknown"):
            continue
        media_type = _media_type(layout, entry)
        if media_type not in MANIFESTS:
            raise SbomError(f"{layout}: index {descriptor['digest']} lists {entry.get('digest')} of unsupported "
                            f"media type {media_type} (expected one of {', '.join(MANIFESTS)})")
        manifest = _json_blob(layout, entry)
        if not platform:
            platform = _json_blob(layout, manifest["config"])
        found = True
        yield "/".join(platform[k] for k in ("os", "architecture", "variant") if platform.get(k)), manifest
    if not found:
        raise SbomError(f"{layout}: index {descriptor['digest']} lists no image of a known platform")


def _manifest(layout: Path, descriptor: dict) -> dict:
    media_type = _media_type(layout, descriptor)
    if media_type not in MANIFESTS:
        raise SbomError(f"{layout}: {descriptor['digest']} has unsupported media type {media_type} "
                        f"(expected one of {', '.join(MANIFESTS + INDEXES)})")
    return _json_blob(layout, descriptor)


def _blob_path(layout: Path, descriptor: dict) -> Path:
    digest = str(descriptor.get("digest"))
    algorithm, _, hex_digest = digest.partition(":")
    if algorithm != "sha256" or not re.fullmatch(r"[0-9a-f]{64}", hex_digest):
        raise SbomError(f"{layout}: blob {digest}: only sha256 digests are supported")
    path = layout / "blobs" / "sha256" / hex_digest
    if not path.is_file():
        raise SbomError(f"{layout}: blob {digest} is missing (no blobs/sha256/{hex_digest})")
    return path


def _check_digest(layout: Path, descriptor: dict, actual: str) -> None:
    if f"sha256:{actual}" != descriptor["digest"]:
        raise SbomError(f"{layout}: blob {descriptor['digest']} does not match its digest "
                        f"(its content hashes to sha256:{actual})")


def _json_blob(layout: Path, descriptor: dict) -> dict:
    data = _blob_path(layout, descriptor).read_bytes()
    _check_digest(layout, descriptor, hashlib.sha256(data).hexdigest())
    try:
        return json.loads(data)
    except ValueError as err:
        raise SbomError(f"{layout}: blob {descriptor['digest']} is not JSON ({err})") from err


# --- layers: the kept files in their final state -------------------------------------------------------


class _Hashing(io.RawIOBase):
    """A reader that hashes what passes through, so a layer is verified in the same single read."""

    def __init__(self, raw: BinaryIO):
        self.raw = raw
        self.sha256 = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        count = self.raw.readinto(buffer)
        self.sha256.update(memoryview(buffer)[:count])
        return count

    def drained_hexdigest(self) -> str:
        """The digest of the whole blob: tar stops at its end-of-archive blocks, the blob may go on."""
        buffer = bytearray(1 << 20)
        while self.readinto(buffer):
            pass
        return self.sha256.hexdigest()


def _kept(path: str) -> bool:
    """The files this module reads; every other file of a layer is skipped unread."""
    if path in OS_RELEASE or path in (DPKG_STATUS, APK_INSTALLED):
        return True
    parts = path.split("/")
    if "/".join(parts[:-1]) == DPKG_STATUS_D:
        return True
    return (len(parts) >= 3 and parts[-1] == "METADATA" and parts[-2].endswith(".dist-info")
            and parts[-3] in PYTHON_SITES)


def _normal(name: str) -> str | None:
    path = posixpath.normpath("/" + name).lstrip("/")
    return path or None


def _drop(files: Files, path: str) -> None:
    """Remove ``path`` and everything under it ("" is the root)."""
    prefix = f"{path}/" if path else ""
    for key in [k for k in files if k == path or k.startswith(prefix)]:
        del files[key]


def _apply_layer(files: Files, tar: tarfile.TarFile) -> None:
    """One layer over ``files``. Whiteouts hide only lower layers' paths, never this layer's own files."""
    lower_dirs = {posixpath.dirname(k) for k in files}
    lower_dirs |= {d for k in list(lower_dirs) for d in _ancestors(k)}
    hidden: list[str] = []
    emptied: list[str] = []
    added: Files = {}
    for member in tar:
        path = _normal(member.name)
        if path is None:
            continue
        folder, base = posixpath.dirname(path), posixpath.basename(path)
        if base == OPAQUE:
            emptied.append(folder)
            continue
        if base.startswith(WHITEOUT):
            hidden.append(posixpath.join(folder, base[len(WHITEOUT):]))
            continue
        if member.isdir():
            if path in files:
                hidden.append(path)  # a directory where a lower layer had a file
            continue
        if path in lower_dirs:
            hidden.append(path)  # a file or link where a lower layer had a directory
        if not _kept(path):
            continue
        if member.issym():
            added[path] = Symlink(member.linkname)
        elif member.islnk():
            target = _normal(member.linkname)
            if target in added:
                added[path] = added[target]
        elif member.isfile():
            added[path] = tar.extractfile(member).read()
        else:
            hidden.append(path)
    for path in emptied:
        _drop(files, path)
    for path in hidden:
        _drop(files, path)
    files.update(added)


def _ancestors(path: str) -> Iterator[str]:
    while path:
        path = posixpath.dirname(path)
        if path:
            yield path


def _read_layer(layout: Path, descriptor: dict, files: Files) -> None:
    media_type = _media_type(layout, descriptor)
    if media_type not in LAYER_COMPRESSION:
        raise SbomError(f"{layout}: layer {descriptor['digest']} has unsupported media type {media_type} "
                        f"(expected one of {', '.join(LAYER_COMPRESSION)})")
    compression = LAYER_COMPRESSION[media_type]
    if compression == "zstd":
        try:
            import zstandard
        except ImportError as err:
            raise SbomError(f"{layout}: layer {descriptor['digest']} is zstd-compressed ({media_type}) and the "
                            "zstandard module is not installed to read it") from err
    with _blob_path(layout, descriptor).open("rb") as raw:
        hashing = _Hashing(raw)
        stream: BinaryIO = io.BufferedReader(hashing, 1 << 20)
        try:
            if compression == "zstd":
                stream = zstandard.ZstdDecompressor().stream_reader(stream, read_across_frames=True)
            mode = "r|gz" if compression == "gzip" else "r|"
            with tarfile.open(fileobj=stream, mode=mode) as tar:
                _apply_layer(files, tar)
            unreadable = None
        except (tarfile.TarError, OSError, EOFError, zlib.error,
                *((zstandard.ZstdError,) if compression == "zstd" else ())) as err:
            unreadable = err
        _check_digest(layout, descriptor, hashing.drained_hexdigest())
    if unreadable is not None:
        raise SbomError(f"{layout}: layer {descriptor['digest']} is not a readable {media_type} ({unreadable})")


def _image_files(layout: Path, manifest: dict) -> Files:
    files: Files = {}
    for layer in manifest.get("layers") or []:
        _read_layer(layout, layer, files)
    return files


def _content(files: Files, path: str) -> bytes | None:
    """The bytes at ``path``, following symlinks among the kept files (Debian's etc/os-release is one)."""
    for _ in range(8):
        entry = files.get(path)
        if not isinstance(entry, Symlink):
            return entry
        base = "" if entry.target.startswith("/") else posixpath.dirname(path)
        path = _normal(posixpath.join(base, entry.target)) or ""
    return None


# --- components ---------------------------------------------------------------------------------------


def _image_components(layout: Path, manifest: dict) -> list[dict]:
    files = _image_files(layout, manifest)
    release = _os_release(files)
    components: dict[str, dict] = {}
    for component in [*_os_component(release), *_dpkg_components(layout, files, release),
                      *_apk_components(layout, files, release), *_python_components(files)]:
        components.setdefault(component["bom-ref"], component)  # one package in two places is one component
    return list(components.values())


def _os_release(files: Files) -> dict[str, str]:
    for path in OS_RELEASE:
        data = _content(files, path)
        if data is not None:
            return dict(_os_release_fields(data.decode("utf-8", "replace")))
    return {}


def _os_release_fields(text: str) -> Iterator[tuple[str, str]]:
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if not sep or key.startswith("#"):
            continue
        try:
            words = shlex.split(value)
        except ValueError:
            words = [value.strip("\"'")]
        yield key, " ".join(words)


def _os_component(release: dict[str, str]) -> list[dict]:
    if not release.get("ID"):
        return []
    component = {"type": "operating-system", "name": release["ID"], "bom-ref": f"os:{release['ID']}"}
    if release.get("VERSION_ID"):
        component["version"] = release["VERSION_ID"]
        component["bom-ref"] += f"@{release['VERSION_ID']}"
    return [component]


def _distro_id(layout: Path, release: dict[str, str], database: str) -> str:
    if not release.get("ID"):
        raise SbomError(f"{layout}: the image has {database} but no os-release ID to name its distribution")
    return release["ID"]


def _dpkg_components(layout: Path, files: Files, release: dict[str, str]) -> Iterator[dict]:
    texts = [(DPKG_STATUS, False)] + [(p, True) for p in sorted(files) if posixpath.dirname(p) == DPKG_STATUS_D]
    packages = []
    for path, distroless in texts:
        data = _content(files, path)
        if data is not None:
            packages += dpkg_packages(data.decode("utf-8", "replace"), installed_without_status=distroless)
    if not packages:
        return
    distro = _distro_id(layout, release, "a dpkg database")
    qualifier = f"&distro={distro}-{release['VERSION_ID']}" if release.get("VERSION_ID") else ""
    for pkg in packages:
        name, version, arch = pkg["Package"], pkg.get("Version", ""), pkg.get("Architecture", "all")
        purl = f"pkg:deb/{distro}/{name}@{purl_version(version)}?arch={arch}{qualifier}"
        yield _library(name, version, purl, source=pkg.get("Source", "").split(" ")[0])


def _apk_components(layout: Path, files: Files, release: dict[str, str]) -> Iterator[dict]:
    data = _content(files, APK_INSTALLED)
    if data is None:
        return
    packages = []
    for stanza in data.decode("utf-8", "replace").split("\n\n"):
        fields = {line[0]: line[2:] for line in stanza.splitlines() if line[1:2] == ":"}
        if fields.get("P"):
            packages.append(fields)
    if not packages:
        return
    distro = _distro_id(layout, release, "an apk database")
    for pkg in packages:
        name, version = pkg["P"], pkg.get("V", "")
        qualifiers = [f"arch={pkg['A']}"] if pkg.get("A") else []
        qualifiers += [f"distro={release['VERSION_ID']}"] if release.get("VERSION_ID") else []
        purl = f"pkg:apk/{distro}/{name}@{purl_version(version)}" + ("?" + "&".join(qualifiers) if qualifiers else "")
        yield _library(name, version, purl, source=pkg.get("o", ""))


def _python_components(files: Files) -> Iterator[dict]:
    for path in sorted(files):
        if not path.endswith(".dist-info/METADATA"):
            continue
        data = _content(files, path)
        if data is None:
            continue
        headers = HeaderParser().parsestr(data.decode("utf-8", "replace"), headersonly=True)
        name, version = headers.get("Name"), headers.get("Version")
        if not name or not version:
            continue
        name, version = name.strip(), version.strip()
        normalized = re.sub(r"[-_.]+", "-", name).lower()  # PEP 503, as the pypi purl type asks
        yield _library(name, version, f"pkg:pypi/{normalized}@{purl_version(version)}")


def _library(name: str, version: str, purl: str, source: str = "") -> dict:
    component = {"type": "library", "bom-ref": purl, "name": name, "version": version, "purl": purl}
    if source and source != name:
        component["properties"] = [{"name": "aquasecurity:trivy:SrcName", "value": source}]
    return component
