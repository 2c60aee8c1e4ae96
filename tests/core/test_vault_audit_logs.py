"""Vault's audit log reaches Loki through the node log agent, and the Core dashboard shows it.

The chain, each link checked here:

1. Vault's audit device is the file device with ``file_path: stdout`` (format json): every entry is
   one line on the server container's stdout (the plan's ``vault:index/audit:Audit``);
2. the node log agent reads the Vault server containers' files and labels their lines ``namespace``
   and ``container``, from the file path, as Loki indexes them (rendered agent and Loki values;
   test_node_logs.py shows the agent reads those files);
3. the panel "Vault audit log" of the Core dashboard selects exactly those streams and keeps the
   lines whose JSON ``type`` is an audit entry's: shown against a real OpenBao server (Vault's API and
   audit format) with the program's audit options, whose stdout carries the entries and whose
   server log does not pass the filter.

Not shown: Loki answering the query (no Loki here); the runbook says how to check it on a cluster.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import time

import pytest
import requests
import yaml
from test_vault_access import ROOT_TOKEN, _find_bao, _free_port_pair

from components import settings as platform_settings
from components.core.observability import catalog as obs_catalog
from components.core.observability import node_logs
from tests.helpers import by_type, rule_values
from tools.render import stack_config

STACKS = ("dev", "prod")
CHART = "kubernetes:helm.sh/v4:Chart"
PANEL = "Vault audit log"
FROM_FILE_PATH = {"k8s.namespace.name", "k8s.pod.name", "k8s.pod.uid", "k8s.container.name", "k8s.container.restart_count"}
"""What the file_log receiver's ``container`` operator reads from ``/var/log/pods/<namespace>_<pod>_<uid>/<container>/<n>.log``
(add_metadata_from_filepath, on by default: opentelemetry-collector-contrib pkg/stanza/operator/parser/container)."""
SECRET_VALUE = "probe-value-7f3c9a"
MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"\s*')


def loaded(stack: str) -> platform_settings.PlatformSettings:
    return platform_settings.parse(stack_config(stack), stack)


def panel_expr(stack: str = "prod") -> str:
    """The panel's query as the stack deploys it (placeholders filled from its settings)."""
    (panel,) = [p for p in obs_catalog.load_dashboards(rule_values(stack))["core"]["panels"] if p["title"] == PANEL]
    assert panel["datasource"]["uid"] == "loki" and panel["type"] == "logs"
    (target,) = panel["targets"]
    return target["expr"]


def stream_selector(expr: str) -> dict[str, str]:
    """The ``{label="value", ...}`` of a LogQL query; only exact matchers, so the streams are named, not guessed."""
    body = re.match(r"\s*\{([^}]*)\}", expr).group(1)
    matchers = [MATCHER.fullmatch(part) for part in body.split(",")]
    assert all(m and m.group(2) == "=" for m in matchers), body
    return {m.group(1): m.group(3) for m in matchers}


def type_filter(expr: str) -> re.Pattern:
    """The pipeline after the selector: ``| json | type=~"<regex>"``; LogQL anchors the regex at both ends."""
    pipeline = re.match(r"\s*\{[^}]*\}\s*(.*)$", expr).group(1)
    matched = re.fullmatch(r'\|\s*json\s*\|\s*type\s*=~\s*"([^"]+)"\s*', pipeline)
    assert matched, f"the panel's pipeline is {pipeline!r}"
    return re.compile(f"(?:{matched.group(1)})")


def chart_children(plan: dict, release: str, kind: str) -> list[dict]:
    (urn,) = [r["urn"] for r in plan["resources"] if r["type"] == CHART and r["name"] == release]
    return [r["inputs"] for r in plan["resources"] if r["parent"] == urn and r["inputs"].get("kind") == kind]


@pytest.mark.parametrize("stack", STACKS)
def test_vault_writes_its_audit_entries_to_stdout_as_json(plans, stack):
    (audit,) = by_type(plans[stack], "vault:index/audit:Audit")
    assert audit["inputs"]["type"] == "file"
    assert audit["inputs"]["options"] == {"file_path": "stdout", "format": "json"}


@pytest.mark.parametrize("stack", STACKS)
def test_the_panel_selects_the_vault_server_containers_by_the_labels_the_agent_gives_them(plans, stack):
    plan = plans[stack]
    (vault,) = chart_children(plan, "vault", "StatefulSet")
    # the chart's server container comes first (templates/server-statefulset.yaml); the TLS reload
    # sidecar, in raft mode, is an extraContainer after it and prints no audit entry
    server, *sidecars = [c["name"] for c in vault["spec"]["template"]["spec"]["containers"]]
    assert server not in sidecars
    selector = stream_selector(panel_expr(stack))
    assert selector == {"namespace": loaded(stack).core.namespaces.secrets.name, "container": server}

    (config_map,) = chart_children(plan, node_logs.RELEASE, "ConfigMap")
    agent = yaml.safe_load(config_map["data"]["relay"])
    (labeller,) = [p for p in agent["service"]["pipelines"]["logs"]["processors"] if p.startswith("resource/")]
    copied = {a["key"]: a["from_attribute"] for a in agent["processors"][labeller]["attributes"] if a["action"] in ("upsert", "insert")}
    assert {copied[label] for label in selector} <= FROM_FILE_PATH, "each label comes from the file path, so every line has it"

    (loki,) = [r["inputs"]["values"] for r in plan["resources"] if r["type"] == CHART and r["name"] == "loki"]
    indexed = {a for rule in loki["loki"]["limits_config"]["otlp_config"]["resource_attributes"]["attributes_config"]
               if rule["action"] == "index_label" for a in rule["attributes"]}
    assert set(selector) <= indexed, "Loki stores them as index labels, under these names"


def test_the_selector_check_notices_another_namespace():
    assert stream_selector('{namespace="soma-secrets", container="vault"} | json') == {"namespace": "soma-secrets", "container": "vault"}
    with pytest.raises(AssertionError):
        stream_selector('{namespace=~"soma-.*", container="vault"}')


# --- the entries themselves, from a real server ---------------------------------------------------

def audit_stanza(plan: dict) -> str:
    """The plan's audit device as OpenBao's declarative config (OpenBao refuses enabling one over the API)."""
    (audit,) = by_type(plan, "vault:index/audit:Audit")
    options = "\n".join(f'    {key} = "{value}"' for key, value in sorted(audit["inputs"]["options"].items()))
    return f'audit "{audit["inputs"]["type"]}" "{audit["name"]}" {{\n  options {{\n{options}\n  }}\n}}\n'


def server_log_format(plan: dict) -> str:
    """How the Vault server container formats its own log (the chart's VAULT_LOG_FORMAT)."""
    (vault,) = chart_children(plan, "vault", "StatefulSet")
    env = {e["name"]: e.get("value") for e in vault["spec"]["template"]["spec"]["containers"][0].get("env", [])}
    return env["VAULT_LOG_FORMAT"]


@pytest.fixture(scope="module")
def openbao_output(plans, tmp_path_factory) -> tuple[list[str], list[str]]:
    """stdout and stderr lines of an OpenBao dev server with the plan's audit device and Vault's log format,
    after a few requests (some allowed, one refused). The container runtime writes both streams to the
    Vault container's log file, so the panel sees both."""
    bao = _find_bao()
    log_format = server_log_format(plans["prod"])
    folder = tmp_path_factory.mktemp("openbao-audit")
    (folder / "audit.hcl").write_text(audit_stanza(plans["prod"]))
    port = _free_port_pair()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BAO_", "VAULT_"))}
    with open(folder / "stdout", "wb") as out, open(folder / "stderr", "wb") as err:
        process = subprocess.Popen([bao, "server", "-dev", f"-config={folder / 'audit.hcl'}", f"-dev-root-token-id={ROOT_TOKEN}",
                                    f"-dev-listen-address=127.0.0.1:{port}", "-dev-no-store-token", f"-log-format={log_format}"],
                                   stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env)
    addr = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{addr}/v1/sys/health", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        else:
            pytest.fail((folder / "stderr").read_text()[-2000:])
        root = {"X-Vault-Token": ROOT_TOKEN}
        requests.post(f"{addr}/v1/secret/data/probe", json={"data": {"k": SECRET_VALUE}}, headers=root, timeout=5).raise_for_status()
        requests.get(f"{addr}/v1/secret/data/probe", headers=root, timeout=5).raise_for_status()
        assert requests.get(f"{addr}/v1/secret/data/probe", headers={"X-Vault-Token": "not-a-token"}, timeout=5).status_code == 403
    finally:
        process.terminate()
        process.wait(timeout=15)
    return (folder / "stdout").read_text().splitlines(), (folder / "stderr").read_text().splitlines()


def entries(lines: list[str]) -> list[dict]:
    found = []
    for line in lines:
        try:
            value = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            found.append(value)
    return found


def test_every_audit_entry_vault_prints_passes_the_panel_filter(openbao_output):
    stdout, _ = openbao_output
    audit = entries(stdout)
    assert {e.get("type") for e in audit} == {"request", "response"}, "requests and responses, one JSON object a line"
    allowed = type_filter(panel_expr())
    assert all(allowed.fullmatch(e["type"]) for e in audit)
    paths = {e["request"]["path"] for e in audit}
    assert "secret/data/probe" in paths
    refused = [e for e in audit if e["request"]["path"] == "secret/data/probe" and e.get("error")]
    assert refused and all("permission denied" in e["error"] for e in refused), "a refused request shows with its error"
    assert SECRET_VALUE not in "\n".join(stdout), "secret values reach the log HMAC-hashed, never in plain text"


def test_the_servers_own_json_log_does_not_pass_the_panel_filter(openbao_output):
    """Vault logs JSON too (``| json`` parses those lines): the ``type`` filter is what keeps them out."""
    _, stderr = openbao_output
    server_log = entries(stderr)
    assert server_log and all("@message" in e for e in server_log), "the server's own log, as JSON objects"
    allowed = type_filter(panel_expr())
    assert not [e for e in server_log if allowed.fullmatch(str(e.get("type", "")))]
