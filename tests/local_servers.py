"""Local servers the tests start themselves: PostgreSQL from the machine's binaries (the restore drill,
identity's store), and a free loopback port for any of them."""
from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_bin() -> Path | None:
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    found = shutil.which("initdb")
    return Path(found).resolve().parent if found else None


class PostgresServer:
    """One PostgreSQL server in ``folder``, run as an unprivileged user when the tests run as root."""

    def __init__(self, root: Path, name: str, user: str | None):
        self.data = root / name
        self.socket_dir = root
        self.port = free_port()
        self.user = user
        self.bin = server_bin()

    def run(self, *argv: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        command = list(argv)
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        done = subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=120)
        if check and done.returncode != 0:
            raise AssertionError(f"{argv[0]} failed: {done.stdout}\n{done.stderr}")
        return done

    def initdb(self) -> None:
        self.run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")

    def configure(self, **settings: str) -> None:
        lines = [f"{k} = '{v}'" for k, v in {"port": str(self.port), "unix_socket_directories": str(self.socket_dir),
                                                "listen_addresses": "", **settings}.items()]
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write("\n".join(lines) + "\n")

    def start(self) -> None:
        self.run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.data / "server.log"), "-w", "-t", "60", "start")

    def stop(self) -> None:
        self.run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)

    def psql(self, database: str, sql: str | None = None, file: Path | None = None, **variables: str) -> list[str]:
        argv = ["psql", "-h", str(self.socket_dir), "-p", str(self.port), "-U", "postgres", "-d", database,
                "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"]
        for key, value in variables.items():
            argv += ["-v", f"{key}={value}"]
        argv += ["-f", str(file)] if file else ["-c", sql]
        return [line for line in self.run(*argv).stdout.splitlines() if line]


def unprivileged_user() -> str | None:
    """PostgreSQL refuses to run as root: when the tests do, the server runs as ``nobody``."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("running as root without a 'nobody' user to run PostgreSQL as")
    return "nobody"


@contextlib.contextmanager
def throwaway_database(database: str, **settings: str) -> Iterator[str]:
    """A PostgreSQL server on a loopback port, for as long as the block runs, with one empty database:
    yields its DSN (user ``postgres``). ``settings`` go to postgresql.conf (e.g. ``fsync="off"``). The caller
    checks ``server_bin()`` first, to skip or to refuse as it needs."""
    import psycopg

    user = unprivileged_user()
    root = Path(tempfile.mkdtemp(prefix=f"pg-{database}-", dir="/tmp"))
    if user:
        shutil.chown(root, user)
    server = PostgresServer(root, "data", user)
    try:
        server.initdb()
        server.configure(listen_addresses="127.0.0.1", **settings)
        server.start()
        with psycopg.connect(f"host=127.0.0.1 port={server.port} user=postgres dbname=postgres", autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
        yield f"host=127.0.0.1 port={server.port} user=postgres dbname={database}"
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
