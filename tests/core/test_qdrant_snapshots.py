"""Qdrant snapshots leave the cluster: the CronJob's script, run under /bin/sh against stand-ins for
Qdrant's HTTP API (``curl``) and the object store (``mc``), snapshots every collection on every node,
streams each to the target with its checksum, deletes it from the node and stops at the first
failed download; the rendered stack wires keys, flows and the age alert.

Not exercised: a real Qdrant server (none runs here; the endpoints were read from Qdrant's OpenAPI
at v1.19.x, docs/redoc/v1.19.x/openapi.json) and real ``mc``/``curl`` binaries of the MinIO image.
"""
from __future__ import annotations

import json
import stat
import subprocess
import sys

import pytest

from components.core.data import qdrant
from tests.helpers import objects

FAKE_CURL = r'''#!{python}
"""Qdrant's HTTP API as the snapshot script uses it; every call is logged. Bodies are compact JSON,
as Qdrant's actix handlers serialise them (serde_json, no spaces)."""
import functools, json, os, sys
json.dumps = functools.partial(json.dumps, separators=(",", ":"))
args = sys.argv[1:]
method, headers, url = "GET", [], None
i = 0
while i < len(args):
    a = args[i]
    if a == "-X": method = args[i + 1]; i += 2; continue
    if a == "-H": headers.append(args[i + 1]); i += 2; continue
    if a == "--retry": i += 2; continue
    if a.startswith("-"): i += 1; continue
    url = a; i += 1
header_lines = []
for h in headers:
    header_lines += open(h[1:]).read().splitlines() if h.startswith("@") else [h]
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps({{"method": method, "url": url, "headers": header_lines, "argv": args}}) + "\n")
if "api-key: " + os.environ["EXPECTED_KEY"] not in header_lines:
    sys.exit(22)
node = url.split("//")[1].split(".")[0]
path = url.split(":6333", 1)[1]
if method == "GET" and path == "/collections":
    print(json.dumps({{"result": {{"collections": [{{"name": "memories"}}, {{"name": "tool docs"}}]}}, "status": "ok", "time": 0.1}}))
elif method == "POST" and path.endswith("/snapshots?wait=true"):
    c = path.split("/")[2]
    print(json.dumps({{"result": {{"name": f"{{c}}-{{node}}-1.snapshot", "creation_time": "2026-11-29T02:30:00", "size": 9, "checksum": "abc123"}}, "status": "ok", "time": 1}}))
elif method == "GET" and "/snapshots/" in path:
    if os.environ.get("FAIL_DOWNLOAD"):
        sys.stdout.write("partial"); sys.exit(18)
    sys.stdout.write(f"SNAPSHOT {{path}} from {{node}}")
elif method == "DELETE":
    print(json.dumps({{"result": True, "status": "ok"}}))
else:
    sys.exit(22)
'''

FAKE_MC = r'''#!{python}
"""mc as the snapshot script uses it: alias set (keys on stdin), pipe (stdin to an object), rm."""
import json, os, sys
store = os.environ["FAKE_STORE"]
args = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps({{"mc": args}}) + "\n")
if args[:2] == ["alias", "set"]:
    keys = sys.stdin.read().splitlines()
    json.dump({{"alias": args[2], "url": args[3], "keys": keys}}, open(os.path.join(store, "alias.json"), "w"))
elif args[0] == "pipe":
    dest = os.path.join(store, args[1])
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    open(dest, "wb").write(sys.stdin.buffer.read())
elif args[0] == "rm":
    os.remove(os.path.join(store, args[1]))
'''


@pytest.fixture
def job(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("curl", FAKE_CURL), ("mc", FAKE_MC)):
        tool = bin_dir / name
        tool.write_text(text.format(python=sys.executable))
        tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    script = tmp_path / "snapshot.sh"
    script.write_text(qdrant.SNAPSHOT_SCRIPT)
    store = tmp_path / "store"
    store.mkdir()

    def run(**extra: str) -> tuple[subprocess.CompletedProcess, list[dict]]:
        env = {
            "PATH": f"{bin_dir}:/usr/bin:/bin", "FAKE_LOG": str(tmp_path / "log"), "FAKE_STORE": str(store),
            "EXPECTED_KEY": "qd-key", "QDRANT_API_KEY": "qd-key", "QDRANT_NAME": "qdrant",
            "QDRANT_HEADLESS": "qdrant-headless.soma-data.svc.cluster.local", "QDRANT_PORT": "6333", "QDRANT_NODES": "2",
            "S3_ENDPOINT": "https://backup.example.com", "S3_PATH": "soma-prod-backups/qdrant-snapshots/",
            "S3_ACCESS_KEY_ID": "AK", "S3_SECRET_ACCESS_KEY": "se/cr+et", **extra,
        }
        done = subprocess.run(["/bin/sh", str(script)], env=env, capture_output=True, text=True, timeout=60)
        log = [json.loads(line) for line in (tmp_path / "log").read_text().splitlines()] if (tmp_path / "log").exists() else []
        return done, log

    return run, store


def test_every_collection_of_every_node_reaches_the_target_with_its_checksum_and_leaves_the_node(job):
    run, store = job
    done, log = run()
    assert done.returncode == 0, done.stderr
    (run_dir,) = (store / "target" / "soma-prod-backups" / "qdrant-snapshots").iterdir()
    uploaded = sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file())
    assert uploaded == ["COMPLETE"] + [f"{node}/{c}.snapshot{ext}" for node in ("qdrant-0", "qdrant-1")
                                       for c in ("memories", "tool docs") for ext in ("", ".sha256")]
    assert (run_dir / "qdrant-1" / "memories.snapshot").read_text() == "SNAPSHOT /collections/memories/snapshots/memories-qdrant-1-1.snapshot from qdrant-1"
    assert (run_dir / "qdrant-0" / "memories.snapshot.sha256").read_text() == "abc123  memories.snapshot\n"
    deletes = [c["url"] for c in log if c.get("method") == "DELETE"]
    assert len(deletes) == 4 and all(u.endswith("?wait=true") for u in deletes)
    assert json.loads((store / "alias.json").read_text()) == {"alias": "target", "url": "https://backup.example.com", "keys": ["AK", "se/cr+et"]}
    argv = " ".join(" ".join(c.get("argv", c.get("mc", []))) for c in log)
    assert "qd-key" not in argv and "se/cr+et" not in argv, "keys travel in files and on stdin, never on a command line"


def test_a_failed_download_stops_the_run_and_removes_the_partial_object(job):
    run, store = job
    done, log = run(FAIL_DOWNLOAD="1")
    assert done.returncode != 0 and "failed" in done.stderr
    assert not [p for p in store.rglob("*.snapshot")], "the partial snapshot was removed"
    assert not [c for c in log if c.get("method") == "DELETE"], "the node keeps its snapshot when the copy failed"
    assert not list(store.rglob("COMPLETE"))


def test_a_wrong_api_key_fails_the_run(job):
    run, store = job
    done, _ = run(QDRANT_API_KEY="other")
    assert done.returncode != 0 and not list(store.rglob("COMPLETE"))


def one(plan: dict, kind: str, name: str) -> dict:
    (found,) = [o for o in objects(plan, kind) if o["metadata"]["name"] == name]
    return found


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_stack_snapshots_every_node_with_keys_from_secrets_and_watches_the_age(plans, stack):
    from tests.core.test_core_data import loaded
    s = loaded(stack).core
    plan = plans[stack]
    cron = one(plan, "CronJob", "qdrant-backup")
    assert cron["spec"]["schedule"] == s.qdrant.snapshot_schedule
    container = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e for e in container["env"]}
    assert env["QDRANT_NODES"]["value"] == str(s.qdrant.replicas)
    assert env["QDRANT_API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "qdrant-api-key", "key": "api-key"}
    target = "offsite-backups-credentials" if s.backups.offsite else "qdrant-backup-backups"
    assert env["S3_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"]["name"] == target
    assert env["S3_PATH"]["value"] == (f"{s.backups.offsite.bucket}/qdrant-snapshots/" if s.backups.offsite else "qdrant-snapshots/")
    headless = one(plan, "Service", "qdrant-headless")
    assert env["QDRANT_HEADLESS"]["value"].startswith(f"{headless['metadata']['name']}.{headless['metadata']['namespace']}.svc")
    labels = cron["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    ingress = one(plan, "NetworkPolicy", "qdrant-from-backup-job")["spec"]
    assert ingress["ingress"][0]["from"][0]["podSelector"]["matchLabels"].items() <= labels.items()
    assert ingress["ingress"][0]["ports"] == [{"port": qdrant.HTTP_PORT, "protocol": "TCP"}]
    egress = [o["spec"] for o in objects(plan, "NetworkPolicy") if o["metadata"]["name"].startswith("qdrant-backup-egress-")]
    reaches = [e["egress"][0]["to"][0] for e in egress]
    if s.backups.offsite:
        assert {"ipBlock": {"cidr": s.backups.offsite.egress_cidr}} in reaches
    else:
        assert any(r.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name") == "minio" for r in reaches)
    (rule,) = [o for o in objects(plan, "PrometheusRule") if o["metadata"]["name"] == "soma-backup-age"]
    streams = {r["labels"]["stream"] for r in rule["spec"]["groups"][0]["rules"]}
    raft = {"vault-raft"} if s.vault.mode == "raft" else set()  # Vault's own stream, where it has Raft
    assert streams == {"postgres", "clickhouse", "qdrant"} | raft
