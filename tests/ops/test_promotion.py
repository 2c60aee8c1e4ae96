"""Promotion and rollback: what is promoted, what stops it, and what the log and the audit pipeline keep.

The render of a commit is stood in for (tests/ops/promotion_fixtures.py); git, the signed log, the results
files and the audit contract (the pipeline's own ClickHouse SQL in chdb) are real.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from components import catalog
from tests.images.conftest import _tool, keys
from tests.ops import promotion_fixtures as fx
from tools.ops import promote as promotion
from tools.ops import promotion_log, results
from tools.ops.promote import PromotionError
from tools.ops.promotion_log import LogError
from tools.ops.results import Check, StageResult

pytestmark = pytest.mark.skipif(_tool("cosign") is None, reason="needs cosign for the log's signatures: `make cosign`")

REGISTRY = "registry.soma.example.com"


@pytest.fixture(scope="module")
def log_keys(tmp_path_factory):
    folder = tmp_path_factory.mktemp("log-keys")
    return {"log": keys(folder / "log"), "stranger": keys(folder / "stranger"), "platform": keys(folder / "platform")}


@pytest.fixture(scope="module")
def lock():
    return catalog.load()


@pytest.fixture()
def world(tmp_path, log_keys, lock):
    root = fx.repository(tmp_path / "repo", log_keys["log"][1])
    mirrored = lock.for_registry(REGISTRY)
    images = [f"{mirrored.image(k).name}@{mirrored.image(k).digest}" for k in sorted(lock.images)[:3]]
    tree = fx.FakeTree(lock_=lock, images=images, registry=REGISTRY,
                       signature_settings=fx.signatures(Path(log_keys["platform"][1]).read_text()))
    return {"root": root, "key": log_keys["log"][0], "tree": tree, "keys": log_keys}


def staging_results(root: Path, release: str, finished_at: str = "2026-11-29T12:00:00Z", passed: bool = True) -> None:
    for kind in ("load", "chaos"):
        results.write(root, StageResult(kind=kind, stack="staging", release=release, finished_at=finished_at, passed=passed,
                                        source="test", checks=(Check(f"{kind} check", passed, "1", "<2"),)))


def promote_to_staging(world, **changes):
    return promotion.promote("dev", "staging", fx.options(world["root"], world["key"], world["tree"], **changes))


def test_dev_to_staging_records_head_its_release_and_the_gates_and_the_log_verifies(world, lock):
    head = fx.git(world["root"], "rev-parse", "HEAD")
    entry = promote_to_staging(world)
    record = entry.record
    assert (record["sequence"], record["kind"], record["from"], record["to"]) == (1, "promote", "dev", "staging")
    assert record["commit"] == head and record["previous"] == ""
    assert record["release"] == world["tree"].release()[1]
    assert record["digests"]["image/" + sorted(lock.images)[0]] == lock.images[sorted(lock.images)[0]].digest
    assert record["who"] == "release-manager@example.test" and record["when"] == "2026-11-29T20:00:00Z"
    assert record["gate"]["result"] == "passed" and record["gate"]["findings"] == {"mandatory": 0, "advisory": 3, "waived": 2}
    assert record["candidate"]["dev_gate"]["stack"] == "dev"
    assert record["signatures"]["images"] == 3 and record["results"] == []
    assert world["tree"].rendered == ["dev", "staging"]
    assert [e.sequence for e in promotion_log.verify(world["root"])] == [1]
    assert promotion.main(["--root", str(world["root"]), "verify-log"]) == 0


def test_a_dirty_tree_or_a_blocking_gate_finding_stops_dev_to_staging_and_nothing_is_written(world):
    (world["root"] / "README").write_text("edited, not committed\n")
    with pytest.raises(PromotionError, match="uncommitted changes"):
        promote_to_staging(world)
    fx.git(world["root"], "checkout", "README")
    for stack in ("dev", "staging"):
        tree = replace(world["tree"], gates={stack: replace(fx.FAILED, stack=stack)})
        with pytest.raises(PromotionError, match=fr"the {stack} gate refused[\s\S]*runs as root"):
            promote_to_staging({**world, "tree": tree})
    assert promotion_log.read(world["root"]) == []


@pytest.mark.parametrize("tree_change, expected", [
    ({"mirror_refusals": ["registry.soma.example.com/x@sha256:ab: not in the mirror report"]}, "mirror check refused"),
    ({"signature_settings": None}, "has no mesh.signatures"),
    ({"migration_refusals": ["identity migration 2 (x): declared expand, but RENAME breaks the previous release's "
                             "queries"]}, "would make a rollback unsafe[\\s\\S]*identity migration 2"),
    ({"images": ["registry.soma.example.com/not/in-catalog@sha256:" + "0123456789abcdef" * 4]}, "not an image of the catalog"),
])
def test_a_refusing_mirror_check_or_an_image_admission_would_not_verify_stops_it(world, tree_change, expected):
    with pytest.raises(PromotionError, match=expected):
        promote_to_staging({**world, "tree": replace(world["tree"], **tree_change)})
    assert not (world["root"] / "promotions/log").exists()


def test_an_image_whose_signature_does_not_verify_is_named_and_nothing_is_recorded(world):
    unsigned = world["tree"].images[1]
    with pytest.raises(PromotionError, match=r"1 of 3 image\(s\) of staging do not verify[\s\S]*" + unsigned.split("@")[0]):
        promote_to_staging(world, verify=fx.verify_all_but(unsigned))
    assert promotion_log.read(world["root"]) == []


def test_staging_to_prod_takes_stagings_recorded_commit_never_head_and_needs_green_recent_results(world):
    first = promote_to_staging(world)
    fx.commit(world["root"], "a later change on main")
    release = first.record["release"]
    seen: list[str] = []
    prod = fx.options(world["root"], world["key"], world["tree"], seen=seen)
    with pytest.raises(PromotionError, match="no load result for staging"):
        promotion.promote("staging", "prod", prod)
    assert world["tree"].rendered == ["dev", "staging"]  # refused before rendering prod
    staging_results(world["root"], release, passed=False)
    with pytest.raises(PromotionError, match="the load tests failed"):
        promotion.promote("staging", "prod", prod)
    staging_results(world["root"], release, finished_at="2026-11-20T12:00:00Z")
    with pytest.raises(PromotionError, match="a promotion needs one newer than 7 days"):
        promotion.promote("staging", "prod", prod)
    staging_results(world["root"], "sha256:" + "0123456789abcdef" * 4)
    with pytest.raises(PromotionError, match="not the one being promoted"):
        promotion.promote("staging", "prod", prod)
    staging_results(world["root"], release)
    with pytest.raises(PromotionError, match="needs one newer than 6:00:00"):
        promotion.promote("staging", "prod", replace(prod, max_age=timedelta(hours=6)))
    record = promotion.promote("staging", "prod", prod).record
    assert set(seen) == {first.record["commit"]}
    assert (record["commit"], record["release"], record["candidate"]) == (first.record["commit"], release, {"record": 1})
    assert [r["kind"] for r in record["results"]] == ["load", "chaos"]
    load = results.path_for(world["root"], "staging", "load")
    assert record["results"][0]["sha256"] == promotion_log.sha256(load.read_bytes())
    assert record["results"][0]["finished_at"] == "2026-11-29T12:00:00Z"
    assert record["previous"] == promotion_log.read(world["root"])[0].digest


def test_prod_refuses_a_staging_record_whose_commit_gives_another_release(world):
    promote_to_staging(world)
    drifted = replace(world["tree"], release_override="sha256:" + "fedcba9876543210" * 4)
    with pytest.raises(PromotionError, match="nothing is rebuilt"):
        promotion.promote("staging", "prod", fx.options(world["root"], world["key"], drifted))
    with pytest.raises(PromotionError, match="staging has no promotion record"):
        promotion.promote("staging", "prod", replace(fx.options(world["root"], world["key"], world["tree"]),
                                                        root=world["root"] / "elsewhere"))


def test_rollback_restores_a_prod_record_through_the_gates_and_says_why_no_results_are_needed(world):
    first = promote_to_staging(world)
    staging_results(world["root"], first.record["release"])
    opts = fx.options(world["root"], world["key"], world["tree"])
    good = promotion.promote("staging", "prod", opts)
    fx.commit(world["root"], "release 2")
    second = promotion.promote("dev", "staging", opts)
    staging_results(world["root"], second.record["release"])
    promotion.promote("staging", "prod", opts)
    with pytest.raises(PromotionError, match="record 1 deployed staging, not prod"):
        promotion.rollback("prod", 1, opts)
    with pytest.raises(PromotionError, match="the prod gate refused"):
        promotion.rollback("prod", good.sequence, replace(opts, checkout=fx.fake_checkout(
            replace(world["tree"], gates={"prod": replace(fx.FAILED, stack="prod")}))))
    shutil.rmtree(world["root"] / "promotions/results")  # results are not what a rollback to a prod release needs
    back = promotion.rollback("prod", good.sequence, opts).record
    assert (back["kind"], back["to"], back["restores"], back["replaces"]) == ("rollback", "prod", 2, 4)
    assert back["commit"] == good.record["commit"] and back["release"] == good.record["release"]
    assert back["results"] == [] and "already promoted to prod (record 2)" in back["results_note"]
    with pytest.raises(PromotionError, match="runs record 5 already|nothing to roll back"):
        promotion.rollback("prod", 5, opts)


def test_a_rollback_across_a_contract_step_its_code_predates_is_refused_and_one_after_its_safe_release_passes(world):
    expand = {"version": 1, "description": "runs", "sql": "CREATE TABLE runs (id int)", "change": "expand", "safe_after": ""}
    opts = fx.options(world["root"], world["key"], world["tree"])
    first = promotion.promote("dev", "staging", opts)
    release = first.record["release"]
    staging_results(world["root"], release)
    promotion.promote("staging", "prod", opts)                         # record 2: release at commit A
    b = fx.commit(world["root"], "release 2 drops a column")
    contract = {**expand, "version": 2, "description": "drop runs.owner", "change": "contract",
                "safe_after": "sha256:" + "0123456789abcdef" * 4}
    steps = {first.record["commit"]: {"orchestrator": [expand]}, b: {"orchestrator": [expand, contract]}}
    tree = replace(world["tree"], steps_by_commit=steps)
    opts = fx.options(world["root"], world["key"], tree)
    promotion.promote("dev", "staging", opts)
    promotion.promote("staging", "prod", opts)                         # record 4: commit B, with the contract step
    with pytest.raises(PromotionError, match=r"crosses schema contract steps[\s\S]*orchestrator migration 2 "
                                             r"\(drop runs.owner\): contract, safe only for releases from sha256:0123"):
        promotion.rollback("prod", 2, opts)
    steps[b]["orchestrator"][1] = {**contract, "safe_after": release}  # record 2's release no longer needs the column
    assert promotion.rollback("prod", 2, opts).record["restores"] == 2


def test_the_record_is_an_audit_event_the_pipelines_own_sql_accepts(world, tmp_path):
    from tests.governance.audit_pipeline import Pipeline, as_message
    from tools.ops import audit_event

    entry = promote_to_staging(world)
    event = audit_event.event({**entry.record, "when": promotion.datetime.now(promotion.timezone.utc).isoformat()},
                              entry.digest)
    assert event["event_id"] == entry.record["audit_event_id"]
    assert (event["action"], event["resource"], event["actor"]) == (
        "release.promote", {"type": "stack", "id": "staging"}, {"type": "user", "id": "release-manager@example.test"})
    assert event["attributes"]["release.id"] == entry.record["release"]
    pipeline = Pipeline(str(tmp_path / "chdb"))
    try:
        pipeline.deliver(as_message(event))
        assert pipeline.errors_for(as_message(event)) == []
        assert pipeline.accepted(event["event_id"]) == 1
    finally:
        pipeline.close()
    assert audit_event.actor("service_account:release-ci") == {"type": "service", "id": "release-ci"}


def test_the_command_prints_the_deploy_step_and_sends_the_event_to_the_log_sink(world, capsys, caplog, monkeypatch):
    monkeypatch.setattr(promotion, "_options", lambda args, root: fx.options(root, args.key, world["tree"]))
    caplog.set_level("INFO", logger="soma_service.audit")
    assert promotion.main(["--root", str(world["root"]), "promote", "--from", "dev", "--to", "staging",
                           "--key", world["key"]]) == 0
    out = capsys.readouterr().out
    assert "pulumi up --stack staging --policy-pack policies" in out and "git worktree add --detach" in out
    assert "sent to the log sink" in out
    sent = json.loads(caplog.records[-1].getMessage())
    assert sent["action"] == "release.promote" and sent["event_id"] == promotion_log.read(world["root"])[0].record["audit_event_id"]
    assert promotion.main(["--root", str(world["root"]), "rollback", "--stack", "prod", "--to", "1", "--key", world["key"]]) == 1
    assert "record 1 deployed staging, not prod" in capsys.readouterr().err
    assert promotion.main(["--root", str(world["root"]), "send-event", "1"]) == 0
    assert json.loads(caplog.records[-1].getMessage())["event_id"] == sent["event_id"]  # resent: the same event
    assert promotion.main(["--root", str(world["root"]), "status"]) == 0
    assert "staging  record 1 (promote, 2026-11-29T20:00:00Z)" in capsys.readouterr().out


def test_the_record_names_ci_by_its_actor_variable_and_a_person_by_their_git_email(world, monkeypatch):
    monkeypatch.setenv("SOMA_RELEASE_ACTOR", "service_account:release-ci")
    assert promotion.who_acts(world["root"]) == "service_account:release-ci"
    monkeypatch.delenv("SOMA_RELEASE_ACTOR")
    fx.git(world["root"], "config", "user.email", "maria@example.test")
    assert promotion.who_acts(world["root"]) == "maria@example.test"


# The log itself: tamper evidence


@pytest.fixture()
def three_records(world):
    opts = fx.options(world["root"], world["key"], world["tree"])
    promotion.promote("dev", "staging", opts)
    fx.commit(world["root"], "release 2")
    promotion.promote("dev", "staging", opts)
    fx.commit(world["root"], "release 3")
    promotion.promote("dev", "staging", opts)
    return world["root"] / "promotions/log"


def test_an_edited_record_is_refused_even_re_serialised_and_re_chained(three_records):
    path = three_records / "000002.json"
    record = json.loads(path.read_text())
    path.write_text(path.read_text().replace(record["who"], "someone-else@example.test"))
    with pytest.raises(LogError, match="000002.json: its signature does not verify"):
        promotion_log.verify(three_records.parents[1])
    path.write_text(json.dumps(record))
    with pytest.raises(LogError, match="000002.json: not in canonical form"):
        promotion_log.verify(three_records.parents[1])


def test_a_reordered_removed_or_unsigned_record_is_refused_by_name(three_records, capsys):
    root = three_records.parents[1]
    (three_records / "000003.sig").unlink()
    assert promotion.main(["--root", str(root), "verify-log"]) == 1
    assert "000003.json: unsigned" in capsys.readouterr().err
    (three_records / "000002.json").rename(three_records / "000003.json")
    (three_records / "000002.sig").rename(three_records / "000003.sig")
    with pytest.raises(LogError, match="expected 000002.json next; record 2 was removed"):
        promotion_log.verify(root)
    (three_records / "000003.json").rename(three_records / "000002.json")
    (three_records / "000003.sig").rename(three_records / "000002.sig")
    (three_records / "000001.json").unlink()
    with pytest.raises(LogError, match=r"000001.sig: its record 000001.json was removed"):
        promotion_log.verify(root)
    (three_records / "000001.sig").unlink()
    with pytest.raises(LogError, match="000002.json: expected 000001.json next; record 1 was removed"):
        promotion_log.verify(root)


def test_swapping_two_records_content_breaks_the_sequence_at_the_first(three_records):
    one, two = three_records / "000001.json", three_records / "000002.json"
    a, b = one.read_bytes(), two.read_bytes()
    one.write_bytes(b), two.write_bytes(a)
    with pytest.raises(LogError, match="000001.json: says sequence 2, its place in the log is 1: records were reordered"):
        promotion_log.verify(three_records.parents[1])


def test_removing_the_newest_committed_record_is_seen_in_the_repositorys_history(three_records):
    root = three_records.parents[1]
    fx.git(root, "add", "promotions")
    fx.git(root, "commit", "-q", "-m", "promotion log: records 1-3")
    assert len(promotion_log.verify(root)) == 3
    fx.git(root, "rm", "-q", "promotions/log/000003.json", "promotions/log/000003.sig")
    fx.git(root, "commit", "-q", "-m", "drop the last promotion")
    with pytest.raises(LogError, match=r"promotions/log/000003.json: deleted by commit [0-9a-f]+ drop the last promotion"):
        promotion_log.verify(root)


def test_a_record_whose_commit_the_repository_lost_is_refused(world):
    fx.commit(world["root"], "a release that will be rewritten away")
    promote_to_staging(world)
    fx.git(world["root"], "reset", "-q", "--hard", "HEAD~1")
    fx.git(world["root"], "reflog", "expire", "--expire=now", "--all")
    fx.git(world["root"], "gc", "-q", "--prune=now")
    with pytest.raises(LogError, match="000001.json: names commit '[0-9a-f]{40}', which this repository does not have"):
        promotion_log.verify(world["root"])


def test_a_record_signed_with_another_key_is_not_appended(world):
    stranger = world["keys"]["stranger"][0]
    with pytest.raises(PromotionError, match="is not the private half of .*log.pub; nothing written"):
        promote_to_staging({**world, "key": stranger})
    assert not list((world["root"] / "promotions/log").glob("*"))
