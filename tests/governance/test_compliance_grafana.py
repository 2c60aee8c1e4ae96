"""Grafana's ClickHouse data source (issue 12 point 3, docs/architecture/compliance.md).

* The init container's install script, run for real (python3, as the k8s-sidecar image runs it) against a
  local HTTPS server: a zip with the pinned sha256 is unpacked (executables stay executable); a zip with
  any other sha256, an entry outside the plugin's folder, a plain-http URL or a redirect to http unpack
  nothing.
* The rendered plans: the init container fetches the stack's URL with the pinned sha256 into the volume
  Grafana reads plugins from; Grafana itself installs nothing (preinstall off); the data source has uid
  ``clickhouse`` and the read-only ``grafana`` user whose password comes from Vault through ESO; ClickHouse
  has that user with SELECT on audit.* and cost.* only; the flows are the kit's.
"""
from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import ssl
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from components.core.data import clickhouse
from components.core.observability import grafana, grafana_plugin
from components.settings import PluginSource
from tests.conftest import STACKS
from tests.helpers import objects, pod_specs

PLUGIN = grafana_plugin.PLUGIN_ID


def plugin_zip(entries: dict[str, tuple[bytes, int]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, (content, mode) in entries.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            archive.writestr(info, content)
    return buffer.getvalue()


GOOD = plugin_zip({
    f"{PLUGIN}/plugin.json": (b'{"id": "grafana-clickhouse-datasource"}', 0o644),
    f"{PLUGIN}/gpx_clickhouse_linux_amd64": (b"\x7fELF backend", 0o755),
})
ESCAPING = plugin_zip({f"{PLUGIN}/../evil.sh": (b"#!/bin/sh", 0o755)})


@pytest.fixture(scope="module")
def https(tmp_path_factory):
    """A local HTTPS server with a throw-away CA: ``/good.zip``, ``/escaping.zip``, ``/to-http`` (a redirect to http)."""
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "1",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True)
    served = {"/good.zip": GOOD, "/escaping.zip": ESCAPING}
    downloads: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            downloads.append(self.path)
            if self.path == "/to-http":
                self.send_response(302)
                self.send_header("Location", "http://127.0.0.1:1/good.zip")
                self.end_headers()
                return
            body = served.get(self.path)
            self.send_response(200 if body else 404)
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield {"base": f"https://localhost:{server.server_port}", "ca": str(cert), "downloads": downloads}
    server.shutdown()


def install(https, url: str, sha256: str, dest: Path) -> subprocess.CompletedProcess:
    """The init container's command, run as it runs there: ``python -c SCRIPT url sha256 dir plugin limit``."""
    command = grafana_plugin.init_container(grafana_plugin.PinnedPlugin(url=url, sha256=sha256), _image(), 472)["command"]
    argv = [sys.executable, *command[1:]]
    argv[argv.index(grafana_plugin.PLUGINS_DIR)] = str(dest)
    return subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "SSL_CERT_FILE": https["ca"]}, timeout=60)


def _image():
    from components.catalog import load

    return load().image("k8s-sidecar")


def test_a_zip_with_the_pinned_sha256_is_unpacked_with_its_executable(https, tmp_path):
    result = install(https, f"{https['base']}/good.zip", hashlib.sha256(GOOD).hexdigest(), tmp_path)
    assert result.returncode == 0, result.stderr
    backend = tmp_path / PLUGIN / "gpx_clickhouse_linux_amd64"
    assert backend.read_bytes() == b"\x7fELF backend"
    assert os.access(backend, os.X_OK)
    assert json.loads((tmp_path / PLUGIN / "plugin.json").read_text())["id"] == PLUGIN
    # a restarted pod keeps the emptyDir: the same sha256 is not fetched again
    before = len(https["downloads"])
    again = install(https, f"{https['base']}/good.zip", hashlib.sha256(GOOD).hexdigest(), tmp_path)
    assert again.returncode == 0 and "already installed" in again.stdout
    assert len(https["downloads"]) == before


def test_any_other_sha256_unpacks_nothing(https, tmp_path):
    result = install(https, f"{https['base']}/good.zip", grafana_plugin.SHA256["amd64"], tmp_path)
    assert result.returncode != 0
    assert "sha256" in result.stderr and "nothing was unpacked" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_entry_outside_the_plugin_folder_unpacks_nothing(https, tmp_path):
    result = install(https, f"{https['base']}/escaping.zip", hashlib.sha256(ESCAPING).hexdigest(), tmp_path)
    assert result.returncode != 0 and "is not inside" in result.stderr
    assert not (tmp_path / "evil.sh").exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("path", ["http://127.0.0.1:1/good.zip", "/to-http"])
def test_plain_http_is_refused_even_through_a_redirect(https, tmp_path, path):
    url = path if path.startswith("http:") else f"{https['base']}{path}"
    result = install(https, url, hashlib.sha256(GOOD).hexdigest(), tmp_path)
    assert result.returncode != 0 and "https" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_source_url_must_name_the_pinned_version():
    source = PluginSource(url="https://grafana.com/api/plugins/grafana-clickhouse-datasource/versions/4.20.0/download",
                          cidr="192.0.2.0/24", why="grafana.com")
    with pytest.raises(ValueError, match="4.21.3"):
        grafana_plugin.PinnedPlugin.of(source)
    arm = PluginSource(url=source.url.replace("4.20.0", grafana_plugin.VERSION), cidr="192.0.2.0/24", why="x", arch="arm64")
    assert grafana_plugin.PinnedPlugin.of(arm).sha256 == grafana_plugin.SHA256["arm64"]


# --- the rendered plans ----------------------------------------------------------------------------

def grafana_pod(plan: dict) -> dict:
    return next(spec for obj, spec in pod_specs(plan) if obj["kind"] == "Deployment" and obj["metadata"]["name"] == "grafana")


@pytest.mark.parametrize("stack", STACKS)
def test_grafana_installs_the_pinned_plugin_before_it_starts_and_nothing_else(plans, stack):
    from tools.render import stack_config
    from components import settings

    compliance = settings.parse(stack_config(stack), stack).governance.compliance
    pod = grafana_pod(plans[stack])
    (init,) = [c for c in pod.get("initContainers", []) if c["name"] == grafana_plugin.INIT_CONTAINER]
    url, sha256, directory, plugin_id = init["command"][3:7]
    assert (url, sha256, plugin_id) == (compliance.plugin_source.url, grafana_plugin.SHA256["amd64"], PLUGIN)
    assert "@sha256:" in init["image"] and "k8s-sidecar" in init["image"]
    assert init["securityContext"]["runAsUser"] == grafana.GRAFANA_UID and init["securityContext"]["readOnlyRootFilesystem"]
    (main,) = [c for c in pod["containers"] if c["name"] == "grafana"]
    mounts = {m["mountPath"]: m["name"] for m in main["volumeMounts"]}
    assert mounts[directory] == grafana_plugin.VOLUME == init["volumeMounts"][0]["name"]
    assert {"name": grafana_plugin.VOLUME, "emptyDir": {}} in pod["volumes"]
    ini = next(o for o in objects(plans[stack], "ConfigMap") if o["metadata"]["name"] == "grafana")["data"]["grafana.ini"]
    assert "preinstall_disabled = true" in ini and "check_for_plugin_updates = false" in ini
    assert not any(e["name"] in ("GF_INSTALL_PLUGINS", "GF_PLUGINS_PREINSTALL") for e in main.get("env", []))


@pytest.mark.parametrize("stack", STACKS)
def test_the_clickhouse_data_source_reads_as_the_grafana_user_with_a_vault_password(plans, stack):
    import yaml

    config = next(o for o in objects(plans[stack], "ConfigMap") if o["metadata"]["name"] == "grafana")
    sources = {d["uid"]: d for d in yaml.safe_load(config["data"]["datasources.yaml"])["datasources"]}
    source = sources[grafana.CLICKHOUSE_UID]
    assert source["type"] == PLUGIN
    assert source["jsonData"]["username"] == clickhouse.GRAFANA_USER
    assert source["jsonData"]["host"].startswith("clickhouse-audit.") and source["jsonData"]["port"] == 8123
    assert source["secureJsonData"]["password"] == f"${{{grafana.CLICKHOUSE_PASSWORD_ENV}}}"
    main = next(c for c in grafana_pod(plans[stack])["containers"] if c["name"] == "grafana")
    env = {e["name"]: e for e in main["env"]}
    ref = env[grafana.CLICKHOUSE_PASSWORD_ENV]["valueFrom"]["secretKeyRef"]
    secrets = {o["metadata"]["name"]: o for o in objects(plans[stack], "ExternalSecret")}
    assert ref["name"] in secrets, "the password reaches Grafana through External Secrets"


@pytest.mark.parametrize("stack", STACKS)
def test_clickhouse_grants_the_grafana_user_select_on_audit_and_cost_only(plans, stack):
    (chi,) = [o for o in objects(plans[stack], "ClickHouseInstallation")]
    users = chi["spec"]["configuration"]["users"]
    assert users["grafana/grants/query"] == ["GRANT SELECT ON audit.*", "GRANT SELECT ON cost.*"]
    assert users["grafana/profile"] == "grafana"
    assert users["grafana/password"]["valueFrom"]["secretKeyRef"]["key"] == clickhouse.GRAFANA_PASSWORD_KEY
    assert chi["spec"]["configuration"]["profiles"]["grafana/readonly"] == "2"


@pytest.mark.parametrize("stack", STACKS)
def test_grafana_alerts_go_to_the_platform_alertmanager(plans, stack):
    import yaml

    routes = next(o for o in objects(plans[stack], "ConfigMap") if o["metadata"]["name"] == "grafana-alerting-routes")
    assert routes["metadata"]["labels"][grafana.ALERT_LABEL] == grafana.ALERT_LABEL_VALUE
    document = yaml.safe_load(routes["data"]["grafana-alerting-routes.yaml"])
    (point,) = document["contactPoints"]
    assert point["receivers"][0]["type"] == "prometheus-alertmanager"
    assert point["receivers"][0]["settings"]["url"].startswith("http://kps-alertmanager.")
    assert document["policies"][0]["receiver"] == point["name"]
    sidecar = next(c for c in grafana_pod(plans[stack])["containers"] if c["name"] == "grafana-sc-alerts")
    env = {e["name"]: e.get("value") for e in sidecar["env"]}
    assert env["LABEL"] == grafana.ALERT_LABEL and env["RESOURCE"] == "configmap"
