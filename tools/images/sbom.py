"""The CycloneDX SBOM of an image: its Python environment and its Debian packages, in one document.

The venv part comes from ``cyclonedx-py environment --output-reproducible`` (pinned in
requirements-dev.txt) over the venv's site-packages in the built root filesystem. cyclonedx-py asks the
interpreter it is given for ``sys.path``; the image's interpreter (/usr/bin/python3.11 of Debian 12) need not
exist on the build host (a CI runner of another distribution), so it is given a stand-in that answers with
exactly the venv's site-packages folder: the packages the image installed, nothing of the host's. The Debian part is read from the root filesystem's dpkg status database:
one ``pkg:deb/debian/<name>@<version>?arch=<arch>&distro=debian-<release>`` component per installed
package, plus the operating-system component that scanners (Trivy, Grype) use to choose the advisories.
The document has no timestamp and no serial number, so one root filesystem gives one byte sequence.
"""
from __future__ import annotations

import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator
from urllib.parse import quote

CYCLONEDX_PY = Path(sys.executable).with_name("cyclonedx-py")


def dpkg_packages(status_text: str, *, installed_without_status: bool = False) -> Iterator[dict[str, str]]:
    """Installed packages from a dpkg ``status`` file (RFC 822 stanzas separated by blank lines).

    ``installed_without_status`` reads distroless's ``status.d/<package>`` files: they are the packages'
    control fields (``dpkg-deb --field``) with no Status field, and every package listed there is installed.
    """
    for stanza in status_text.split("\n\n"):
        fields: dict[str, str] = {}
        last = ""
        for line in stanza.splitlines():
            if line[:1] in (" ", "\t") and last:
                continue  # continuation lines (descriptions, conffiles) are not needed
            key, _, value = line.partition(":")
            last = key
            fields[key] = value.strip()
        status = fields.get("Status", " installed" if installed_without_status else "")
        if fields.get("Package") and status.endswith(" installed"):
            yield fields


def purl_version(version: str) -> str:
    """A package version in a purl: an epoch's ``:`` (and anything else unsafe) percent-encoded, ``.+~-`` kept."""
    return quote(version, safe=".+~-")


def debian_release(rootfs: Path) -> str:
    """``12.11`` from etc/debian_version; scanners match advisories on the major release."""
    return (rootfs / "etc" / "debian_version").read_text(encoding="utf-8").strip()


def debian_components(rootfs: Path) -> list[dict]:
    release = debian_release(rootfs).split(".")[0]
    components = []
    for pkg in dpkg_packages((rootfs / "var" / "lib" / "dpkg" / "status").read_text(encoding="utf-8")):
        name, version, arch = pkg["Package"], pkg["Version"], pkg.get("Architecture", "all")
        purl = f"pkg:deb/debian/{name}@{purl_version(version)}?arch={arch}&distro=debian-{release}"
        component = {"type": "library", "bom-ref": purl, "name": name, "version": version, "purl": purl}
        source = pkg.get("Source", "").split(" ")[0]
        if source and source != name:
            component["properties"] = [{"name": "aquasecurity:trivy:SrcName", "value": source}]
        components.append(component)
    return components


def python_sbom(venv: Path) -> dict:
    """``cyclonedx-py environment`` over the site-packages of the venv at ``venv``."""
    site = sorted(venv.glob("lib/python3*/site-packages"))
    if len(site) != 1:
        raise RuntimeError(f"{venv}: expected one lib/python3.*/site-packages, found {len(site)}")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "py.cdx.json"
        path_of_the_venv = Path(tmp) / "python"
        path_of_the_venv.write_text(f"#!/bin/sh\nprintf '%s' {shlex.quote(json.dumps([str(site[0])]))}\n")
        path_of_the_venv.chmod(0o755)
        done = subprocess.run([str(CYCLONEDX_PY), "environment", "--output-reproducible", "--of", "JSON", "-o", str(out),
                               str(path_of_the_venv)], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"cyclonedx-py environment {venv} failed: {done.stderr[-2000:]}")
        return json.loads(out.read_text(encoding="utf-8"))


def image_sbom(app, rootfs: Path, venv_path: str) -> dict:
    """One CycloneDX document for the image of ``app`` built in ``rootfs``."""
    document = python_sbom(rootfs / venv_path.lstrip("/"))
    operating_system = {"type": "operating-system", "bom-ref": f"debian-{debian_release(rootfs)}", "name": "debian",
                        "version": debian_release(rootfs)}
    python = sorted(document.get("components", []), key=lambda c: c.get("bom-ref", c["name"]))
    document["components"] = [operating_system, *python, *sorted(debian_components(rootfs), key=lambda c: c["bom-ref"])]
    document.setdefault("metadata", {})["component"] = {
        "type": "container", "bom-ref": f"image:{app.name}", "name": app.name, "version": app.version,
    }
    document["metadata"].pop("timestamp", None)
    document.pop("serialNumber", None)
    return document
