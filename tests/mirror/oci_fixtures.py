"""Small OCI image layouts written by Python, shaped as ``skopeo copy --all ... oci:<dir>`` leaves them.

A layer is a mapping path → content: ``bytes`` for a regular file, ``Symlink(target)`` for a link.
Whiteouts are ordinary entries, named with ``whiteout(path)`` (deletes ``path`` of lower layers) or
``opaque(folder)`` (empties ``folder`` of lower layers). Tar entries are written in the mapping's order
with mtime 0, so one call always writes the same digests.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import posixpath
import tarfile
from pathlib import Path

from tools.mirror.image_sbom import (DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST, OPAQUE,
                                     WHITEOUT, Symlink)

Layer = dict[str, "bytes | Symlink"]

LAYER_TYPES = {
    ("oci", "gzip"): "application/vnd.oci.image.layer.v1.tar+gzip",
    ("oci", "none"): "application/vnd.oci.image.layer.v1.tar",
    ("oci", "zstd"): "application/vnd.oci.image.layer.v1.tar+zstd",
    ("docker", "gzip"): "application/vnd.docker.image.rootfs.diff.tar.gzip",
}


def whiteout(path: str) -> str:
    """The entry that deletes ``path`` (and all under it) of lower layers."""
    return posixpath.join(posixpath.dirname(path), WHITEOUT + posixpath.basename(path))


def opaque(folder: str) -> str:
    """The entry that hides every lower layer's file under ``folder``."""
    return posixpath.join(folder, OPAQUE)


def blob_path(folder: Path, digest: str) -> Path:
    return Path(folder) / "blobs" / "sha256" / digest.removeprefix("sha256:")


def read_json(folder: Path, digest: str) -> dict:
    return json.loads(blob_path(folder, digest).read_bytes())


def write_image(folder: Path, layers: list[Layer], *, platform: str = "linux/amd64", docker: bool = False,
                compression: str = "gzip", tar_padding: int = 0) -> str:
    """A layout whose index.json names one image manifest; returns the manifest's digest.

    ``tar_padding`` zero bytes follow each tar's end-of-archive blocks, as a large blocking factor leaves them.
    """
    entry = _image(Path(folder), layers, platform, docker, compression, tar_padding)
    _index_json(Path(folder), entry)
    return entry["digest"]


def write_layout(folder: Path, platforms: dict[str, list[Layer]], *, docker: bool = False,
                 attestations: bool = False, compression: str = "gzip",
                 attested: tuple[str, dict] | None = None) -> str:
    """A layout whose index.json names one image index (a manifest list if ``docker``) with one image per
    platform (``"linux/arm64"``, ``"linux/arm/v7"``); ``attestations`` adds buildkit's unknown/unknown
    attestation manifest after each, whose statement carries ``attested`` (predicate type, predicate) when
    given, as BuildKit writes an SBOM attestation. Returns the index's digest."""
    folder = Path(folder)
    entries = []
    for platform, layers in platforms.items():
        entry = _image(folder, layers, platform, docker, compression)
        entries.append({**entry, "platform": _platform(platform)})
        if attestations:
            entries.append(_attestation(folder, entry["digest"], attested))
    media_type = DOCKER_MANIFEST_LIST if docker else OCI_INDEX
    index = _blob(folder, json.dumps({"schemaVersion": 2, "mediaType": media_type, "manifests": entries}).encode())
    entry = {"mediaType": media_type, **index}
    _index_json(folder, entry)
    return entry["digest"]


def _platform(platform: str) -> dict:
    os, architecture, *variant = platform.split("/")
    return {"os": os, "architecture": architecture, **({"variant": variant[0]} if variant else {})}


def _blob(folder: Path, data: bytes) -> dict:
    digest = hashlib.sha256(data).hexdigest()
    (folder / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (folder / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def _tar(layer: Layer) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, content in layer.items():
            info = tarfile.TarInfo(path)
            if isinstance(content, Symlink):
                info.type, info.linkname = tarfile.SYMTYPE, content.target
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return raw.getvalue()


def _compress(data: bytes, compression: str) -> bytes:
    if compression == "gzip":
        return gzip.compress(data, mtime=0)
    if compression == "zstd":
        try:
            import zstandard
        except ImportError:
            return b"\x28\xb5\x2f\xfd" + data  # zstd's magic and no frame: enough to test the refusal
        return zstandard.ZstdCompressor().compress(data)
    return data


def _image(folder: Path, layers: list[Layer], platform: str, docker: bool, compression: str,
           tar_padding: int = 0) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    tars = [_tar(layer) + bytes(tar_padding) for layer in layers]
    layer_type = LAYER_TYPES[("docker" if docker else "oci", compression)]
    descriptors = [{"mediaType": layer_type, **_blob(folder, _compress(t, compression))} for t in tars]
    config = _blob(folder, json.dumps({**_platform(platform), "config": {}, "rootfs": {
        "type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(t).hexdigest() for t in tars]}}).encode())
    media_type = DOCKER_MANIFEST if docker else OCI_MANIFEST
    config_type = "application/vnd.docker.container.image.v1+json" if docker else "application/vnd.oci.image.config.v1+json"
    manifest = _blob(folder, json.dumps({"schemaVersion": 2, "mediaType": media_type,
                                         "config": {"mediaType": config_type, **config},
                                         "layers": descriptors}).encode())
    return {"mediaType": media_type, **manifest}


def _attestation(folder: Path, subject: str, attested: tuple[str, dict] | None = None) -> dict:
    """buildkit's attestation manifest: an in-toto JSON layer, not a tar, on platform unknown/unknown."""
    predicate_type, predicate = attested or ("", {})
    statement = _blob(folder, json.dumps({"_type": "https://in-toto.io/Statement/v0.1", "predicate": predicate,
                                          **({"predicateType": predicate_type} if predicate_type else {})}).encode())
    config = _blob(folder, b'{"architecture":"unknown","os":"unknown","config":{},"rootfs":{"type":"layers","diff_ids":[]}}')
    manifest = _blob(folder, json.dumps({
        "schemaVersion": 2, "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
        "layers": [{"mediaType": "application/vnd.in-toto+json", **statement,
                    **({"annotations": {"in-toto.io/predicate-type": predicate_type}} if predicate_type else {})}]}).encode())
    return {"mediaType": OCI_MANIFEST, **manifest, "platform": {"os": "unknown", "architecture": "unknown"},
            "annotations": {"vnd.docker.reference.type": "attestation-manifest", "vnd.docker.reference.digest": subject}}


def _index_json(folder: Path, entry: dict) -> None:
    (folder / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
