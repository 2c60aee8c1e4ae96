"""The PostgreSQL restore drill's SQL, run against real PostgreSQL servers doing a real point-in-time recovery.

A throwaway server archives its WAL to a folder (standing in for the ObjectStore), a base backup is
taken, the drill's mark script (components/core/data/drill/postgres_mark.sql) writes its marker and
restore point, and more rows and a later marker follow. A second server then recovers from the base
backup and the archive up to the named restore point (``recovery_target_name``, what the Cluster's
``recoveryTarget.targetName`` sets) and is promoted; the drill's verify script must report t in every
column, and the fingerprint script must print the same lines on both sides for what was written before
the restore point, and different lines when the source kept writing (negative control).

What stands in for what: ``cp`` for barman-cloud's WAL upload and restore, pg_basebackup for the
plugin's base backup, PostgreSQL 15 (the machine's) for the catalog's 17. Skipped, with the reason,
where no PostgreSQL server binaries are installed.
"""
from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import pytest

from components.core.data import postgres
from tests.local_servers import PostgresServer, server_bin, unprivileged_user

DRILL_DIR = Path(postgres.__file__).resolve().parent / "drill"
DRILL = "drill-20261129"


BIN = server_bin()
pytestmark = pytest.mark.skipif(BIN is None or shutil.which("psql") is None,
                                reason="no PostgreSQL server binaries (initdb, pg_ctl) or psql here; apt-get install postgresql")


Server = PostgresServer
"""The drill's two servers (source and restored), as tests/local_servers.py runs them."""


@pytest.fixture(scope="module")
def recovered():
    user = unprivileged_user()
    root = Path(tempfile.mkdtemp(prefix="pg-drill-", dir="/tmp"))
    archive = root / "archive"
    archive.mkdir()
    if user:
        shutil.chown(root, user)
        shutil.chown(archive, user)
    source = Server(root, "source", user)
    target = Server(root, "restored", user)
    try:
        source.initdb()
        source.configure(wal_level="replica", archive_mode="on", archive_command=f"cp %p {archive}/%f", archive_timeout="0")
        source.start()
        for db in postgres.DATABASES:
            source.psql("postgres", f"CREATE DATABASE {db}")
        source.psql("orchestrator", "CREATE TABLE runs (id int PRIMARY KEY, state text); "
                                    "INSERT INTO runs SELECT g, 'done-' || g FROM generate_series(1, 500) g")
        source.run(str(BIN / "pg_basebackup"), "-h", str(source.socket_dir), "-p", str(source.port), "-U", "postgres",
                   "-D", str(target.data), "-X", "fetch", "-c", "fast", "--no-sync")
        # Written after the base backup: only WAL replay brings these back.
        source.psql("orchestrator", "INSERT INTO runs SELECT g, 'after-base-' || g FROM generate_series(501, 700) g")
        before = source.psql("orchestrator", file=DRILL_DIR / "postgres_fingerprint.sql")
        marked = source.psql("postgres", file=DRILL_DIR / "postgres_mark.sql", drill=DRILL)
        # Written after the restore point: a point-in-time restore to it must not contain these.
        source.psql("orchestrator", "INSERT INTO runs SELECT g, 'too-late-' || g FROM generate_series(701, 750) g")
        source.psql("postgres", "INSERT INTO public.restore_drill (name) VALUES ('later')")
        later = source.psql("orchestrator", file=DRILL_DIR / "postgres_fingerprint.sql")
        source.psql("postgres", "SELECT pg_switch_wal()")
        deadline = time.time() + 60
        wanted = source.psql("postgres", "SELECT pg_walfile_name(pg_current_wal_lsn())")[0]
        while time.time() < deadline and not any(p.name >= wanted for p in archive.iterdir() if len(p.name) == 24):
            time.sleep(0.5)
            source.psql("postgres", "SELECT pg_switch_wal()")
        source.stop()
        (target.data / "recovery.signal").touch()
        if user:
            shutil.chown(target.data / "recovery.signal", user)
        target.configure(restore_command=f"cp {archive}/%f %p", recovery_target_name=DRILL, recovery_target_action="promote",
                         archive_mode="off")
        target.start()
        deadline = time.time() + 60
        while target.psql("postgres", "SELECT pg_is_in_recovery()") != ["f"] and time.time() < deadline:
            time.sleep(0.5)
        yield {"target": target, "before": before, "later": later, "marked": marked}
    finally:
        source.stop()
        target.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_the_mark_script_writes_a_restore_point(recovered):
    assert len(recovered["marked"]) == 2, "the restore point's LSN and the WAL switch's"


def test_the_verify_script_passes_on_a_cluster_recovered_to_the_drills_restore_point(recovered):
    (row,) = recovered["target"].psql("postgres", file=DRILL_DIR / "postgres_verify.sql", drill=DRILL)
    assert row == "t|t|t|t", "promoted | marker present | stopped at the restore point | owner databases"


def test_the_fingerprints_match_what_was_written_before_the_restore_point_and_nothing_after(recovered):
    restored = recovered["target"].psql("orchestrator", file=DRILL_DIR / "postgres_fingerprint.sql")
    assert restored == recovered["before"]
    assert restored[0].startswith("public|runs|700|")
    assert recovered["later"] != recovered["before"], "negative control: the rows written later change the fingerprint"


def test_a_different_drill_name_fails_verification(recovered):
    (row,) = recovered["target"].psql("postgres", file=DRILL_DIR / "postgres_verify.sql", drill="drill-never-marked")
    assert row.split("|")[1] == "f"


def test_the_verify_script_names_the_platforms_owner_databases():
    text = (DRILL_DIR / "postgres_verify.sql").read_text()
    listed = text.split("datname IN (", 1)[1].split(")", 1)[0]
    assert sorted(name.strip(" '") for name in listed.split(",")) == sorted(postgres.DATABASES)
