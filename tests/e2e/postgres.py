"""A real PostgreSQL server for a test: its own data folder, a free loopback port, stopped after.

The server binaries come from Debian's `postgresql` package (`make postgres` installs it when
missing; CI runs `make test`, which does). PostgreSQL refuses to run as root, so as root the
server runs as the package's `postgres` user, in a folder that user owns.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


def server_binaries() -> Path:
    """The folder holding `initdb` and `pg_ctl` (Debian keeps them off PATH)."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent  # a link in /usr/local/bin, say
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=_version)
    if not versions:
        raise RuntimeError("PostgreSQL is not installed: `make postgres` installs it")
    return Path(versions[-1]).parent


def _version(path: str) -> int:
    return int(Path(path).parent.parent.name)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def postgres_server() -> Iterator[Callable[[str], str]]:
    """Start a server; yields `database(name)`, which creates a database and returns its
    SQLAlchemy URI for Meltano (`postgresql+psycopg://…`)."""
    binaries = server_binaries()
    as_user: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="pg-"))
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(folder, "postgres", "postgres")
    data, port = folder / "data", _free_port()

    def run(*args: str) -> None:
        subprocess.run([*as_user, *args], check=True, capture_output=True, cwd=folder)

    run(str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync")
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    run(str(binaries / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "log"), "-w",
        "start")  # fmt: skip
    try:

        def database(name: str) -> str:
            run(str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres",
                name)  # fmt: skip
            return f"postgresql+psycopg://postgres@127.0.0.1:{port}/{name}"

        yield database
    finally:
        subprocess.run(
            [*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            capture_output=True,
            cwd=folder,
        )
        shutil.rmtree(folder, ignore_errors=True)
