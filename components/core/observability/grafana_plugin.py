"""Grafana's ClickHouse data source plugin, installed from a pinned version whose sha256 is checked first.

Grafana never downloads a plugin itself here (``[plugins] preinstall_disabled``, grafana.py): an init
container fetches the one zip the stack's ``governance.compliance.pluginSource.url`` names (grafana.com's
download of the pinned version in dev, the platform mirror's copy of the same bytes in prod), refuses it
unless its sha256 is the one pinned below, and only then unpacks it into the plugins directory Grafana
reads (an emptyDir). Grafana then checks the plugin's own signature (its MANIFEST.txt, signed by Grafana
Labs) as it does for every plugin: two independent checks, one ours and one the vendor's.

The init container runs the catalog's k8s-sidecar image (the Grafana chart's dashboard sidecar, already
pinned): it is ``python:<v>-alpine`` based (kiwigrid/k8s-sidecar Dockerfile at 2.10.1 and main:
``FROM python:3.15.0b2-alpine3.22``, ENTRYPOINT ``python -u -m sidecar``), so the standard library
(urllib, hashlib, zipfile) does the work; the distroless Grafana image has no shell.

The pin. Version 4.21.3 (Grafana 11.6 and later need 4.15 or newer; our Grafana is 13.2.3). The sha256
values are nixpkgs' ``zipHash`` for that version (pkgs/servers/monitoring/grafana/plugins/
grafana-clickhouse-datasource/default.nix, commit 0365fb591731250bc381234cc9ed0588d432e9f3), the SRI
form of the sha256 of the file nixpkgs' ``fetchurl`` downloads from
``https://grafana.com/api/plugins/grafana-clickhouse-datasource/versions/4.21.3/download?os=linux&arch=<arch>``
(grafana-plugin.nix): x86_64-linux is amd64, aarch64-linux is arm64, converted from base64 to hex.
Single source: no second public file read here pins these bytes (4.14.1's GitHub release zip is pinned
elsewhere, but that version predates Grafana 11.6 support and its release asset is another file).
Grafana's signature check is the second line. To move to another version, take its sha256 from a
public pin or from the grafana.com versions API (``packages.linux-amd64.sha256``) and change both here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from components.catalog import ImageRef
from components.kit.security import container_security_context, resource_requirements
from components.settings import PluginSource, Resources

PLUGIN_ID = "grafana-clickhouse-datasource"
VERSION = "4.21.3"
SHA256 = {
    "amd64": "53c0602214e7ca1af1733962779293587386b0b9a8c544ecead80b819e5f560b",
    "arm64": "da578d58f2fb1be55fab52f8a4eb97b9a5f6a7d18870669ba30537321a53f43c",
}
UPSTREAM_URL = f"https://grafana.com/api/plugins/{PLUGIN_ID}/versions/{VERSION}/download?os=linux&arch={{arch}}"
PLUGINS_DIR = "/var/lib/grafana/plugins"
VOLUME = "plugins"
INIT_CONTAINER = "install-clickhouse-plugin"
MAX_BYTES = 256 * 1024 * 1024
RESOURCES = Resources(cpu_request="50m", memory_request="128Mi", cpu_limit="500m", memory_limit="512Mi")

INSTALL_SCRIPT = r'''
"""Fetch one plugin zip over HTTPS, refuse it unless its sha256 is the pinned one, then unpack it."""
import hashlib, io, os, shutil, stat, sys, urllib.request, zipfile

url, expected, dest, plugin, limit = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
target = os.path.join(dest, plugin)
marker = os.path.join(target, ".installed-sha256")
if os.path.exists(marker) and open(marker).read().strip() == expected:
    print("plugin %s already installed from sha256 %s" % (plugin, expected))
    sys.exit(0)


class HttpsOnly(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if not newurl.startswith("https://"):
            raise SystemExit("refusing a redirect away from https: %s" % newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


if not url.startswith("https://"):
    sys.exit("refusing %s: the plugin is fetched over https only" % url)
with urllib.request.build_opener(HttpsOnly).open(url, timeout=120) as response:
    data = response.read(limit + 1)
if len(data) > limit:
    sys.exit("refusing %s: larger than %d bytes" % (url, limit))
digest = hashlib.sha256(data).hexdigest()
if digest != expected:
    sys.exit("refusing %s: sha256 %s, pinned %s; nothing was unpacked" % (url, digest, expected))
archive = zipfile.ZipFile(io.BytesIO(data))
for info in archive.infolist():
    parts = info.filename.split("/")
    if info.filename.startswith("/") or ".." in parts or parts[0] != plugin:
        sys.exit("refusing %s: entry %r is not inside %s/" % (url, info.filename, plugin))
staging = os.path.join(dest, ".staging")
shutil.rmtree(staging, ignore_errors=True)
for info in archive.infolist():
    path = archive.extract(info, staging)
    mode = (info.external_attr >> 16) & 0o777
    if not info.is_dir() and mode & stat.S_IXUSR:
        os.chmod(path, 0o755)
shutil.rmtree(target, ignore_errors=True)
os.rename(os.path.join(staging, plugin), target)
os.rmdir(staging)
with open(marker, "w") as out:
    out.write(expected + "\n")
print("installed %s from %s (sha256 %s)" % (plugin, url, digest))
'''


@dataclass(frozen=True)
class PinnedPlugin:
    """The one plugin this platform installs into Grafana, as the init container is told to fetch it."""

    url: str
    sha256: str

    @classmethod
    def of(cls, source: PluginSource) -> "PinnedPlugin":
        if VERSION not in source.url:
            raise ValueError(f"governance.compliance.pluginSource.url must serve {PLUGIN_ID} {VERSION}, the pinned "
                             f"version (its URL names the version), got {source.url}")
        return cls(url=source.url, sha256=SHA256[source.arch])


def init_container(plugin: PinnedPlugin, image: ImageRef, uid: int) -> dict[str, Any]:
    """The init container: runs as Grafana's user so the files it writes are Grafana's, secure defaults from the kit.

    ``$(`` would be expanded by Kubernetes in ``args`` and ``{{`` by the chart's ``tpl``: the script has neither.
    """
    if "$(" in INSTALL_SCRIPT or "{{" in INSTALL_SCRIPT:
        raise ValueError("the install script must not contain $( or {{ (Kubernetes and the chart expand them)")
    return {
        "name": INIT_CONTAINER,
        "image": image.reference,
        "imagePullPolicy": "IfNotPresent",
        "command": ["python", "-c", INSTALL_SCRIPT, plugin.url, plugin.sha256, PLUGINS_DIR, PLUGIN_ID, str(MAX_BYTES)],
        "resources": resource_requirements(RESOURCES),
        "securityContext": container_security_context(uid=uid),
        "volumeMounts": [{"name": VOLUME, "mountPath": PLUGINS_DIR}],
    }
