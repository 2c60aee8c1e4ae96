"""The expand/contract rule over the apps' real schema steps and over the steps it must refuse."""
from __future__ import annotations

import pytest

from tools.ops import migrations
from tools.ops.migrations import Step

SAFE = "sha256:" + "0123456789abcdef" * 4


def test_the_apps_real_migrations_keep_one_release_back_safe():
    steps = migrations.app_steps()
    assert set(steps) == {"identity", "orchestrator"} and all(steps.values())
    assert migrations.check(steps, set()) == []


@pytest.mark.parametrize("sql, why", [
    ("ALTER TABLE principals DROP COLUMN password_hash;", "DROP removes"),
    ("DROP TABLE revoked_access_tokens;", "DROP removes"),
    ("ALTER TABLE principals RENAME COLUMN name TO display_name;", "RENAME breaks"),
    ("ALTER TABLE orchestrator_runs ALTER COLUMN owner SET NOT NULL;", "SET NOT NULL breaks"),
    ("ALTER TABLE orchestrator_runs ALTER COLUMN seq TYPE bigint;", "a column type change"),
    ("ALTER TABLE orchestrator_runs ALTER COLUMN seq SET DATA TYPE bigint;", "a column type change"),
    ("ALTER TABLE orchestrator_runs ADD COLUMN owner text, ADD COLUMN region text NOT NULL;",
     "a NOT NULL column without a DEFAULT breaks the previous release's inserts: ADD COLUMN region text NOT NULL"),
    ("TRUNCATE orchestrator_run_events;", "TRUNCATE destroys data"),
])
def test_an_expand_step_with_destructive_ddl_is_refused_naming_app_version_and_statement(sql, why):
    found = migrations.problems("orchestrator", [Step(1, "first", "CREATE TABLE t (a int NOT NULL);", "expand"),
                                                 Step(2, "second", sql, "expand")], set())
    assert len(found) == 1 and found[0].startswith("orchestrator migration 2 (second): declared expand, but ")
    assert why in found[0]


@pytest.mark.parametrize("sql", [
    "CREATE TABLE t (id uuid PRIMARY KEY, name text NOT NULL); CREATE INDEX t_name ON t (name);",
    "ALTER TABLE orchestrator_runs ADD COLUMN owner text, ADD COLUMN lease_until timestamptz;",
    "ALTER TABLE t ADD COLUMN region text NOT NULL DEFAULT 'eu';",
    "ALTER TABLE t ALTER COLUMN region DROP NOT NULL; -- DROP TABLE in a comment is not DDL",
])
def test_additive_steps_are_expand_steps(sql):
    assert migrations.destructive(sql) == []


def test_a_contract_step_ships_only_after_its_safe_release_ran_in_prod():
    step = Step(1, "drop password_hash", "ALTER TABLE principals DROP COLUMN password_hash;", "contract", SAFE)
    assert migrations.problems("identity", [step], set()) == [
        f"identity migration 1 (drop password_hash): safe_after {SAFE} has not run in prod (promotions/log); ship this "
        "contract step only after that release is promoted to prod"]
    assert migrations.problems("identity", [step], {SAFE}) == []
    unnamed = Step(1, "drop", "DROP TABLE t;", "contract")
    assert "a contract step names safe_after" in migrations.problems("identity", [unnamed], {SAFE})[0]


def test_versions_must_be_contiguous_and_the_change_declared():
    found = migrations.problems("identity", [Step(1, "a", "SELECT 1", "expand"), Step(3, "b", "SELECT 1", "widen")], set())
    assert found == ["identity migration 3 (b): versions must run 1, 2, 3...; expected 2",
                     "identity migration 3 (b): change must be expand or contract, got 'widen'"]


def test_the_command_reads_prods_releases_from_the_promotion_log(tmp_path, capsys):
    assert migrations.main(["--log-root", str(tmp_path)]) == 0
    assert "one release back stays safe" in capsys.readouterr().out
