"""A throw-away PostgreSQL server for tests: initdb in a temporary folder, a unix socket there,
a free port, trust authentication; stopped and removed at the end.

Needs Debian's `postgresql` package (initdb and pg_ctl under /usr/lib/postgresql/<version>/bin,
or on PATH, or in $KBUILDER_PG_BIN). PostgreSQL refuses to run as root, so as root the server
runs as `nobody` (through runuser). A missing server is a failure with a message, not a skip.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path


def pg_bin() -> Path:
    candidates = [os.environ.get("KBUILDER_PG_BIN", "")]
    candidates += sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
        reverse=True,
    )
    which = shutil.which("initdb")
    candidates.append(str(Path(which).parent) if which else "")
    for folder in candidates:
        if folder and (Path(folder) / "initdb").is_file() and (Path(folder) / "pg_ctl").is_file():
            return Path(folder)
    raise AssertionError(
        "PostgreSQL's initdb and pg_ctl were not found (looked in $KBUILDER_PG_BIN, /usr/lib/postgresql/*/bin and PATH); "
        "install it with `apt-get install -y postgresql` (Debian) to run this test"
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    runuser = shutil.which("runuser")
    if runuser is None:
        raise AssertionError(
            "running as root needs runuser (util-linux) to start PostgreSQL as the user nobody"
        )
    return [runuser, "-u", "nobody", "--", *command]


def stop_server(url: str) -> None:
    """Stop the server of a `postgres_server()` URL now (a database going away mid-study)."""
    folder = Path(url.split("host=", 1)[1].split("&", 1)[0])
    stopped = subprocess.run(
        _as_server_user([str(pg_bin() / "pg_ctl"), "-D", str(folder / "data"), "-m", "fast", "-w", "stop"]),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert stopped.returncode == 0, stopped.stderr


def restart_server(url: str) -> None:
    """Start again a server stop_server stopped (same folder, same port)."""
    folder = Path(url.split("host=", 1)[1].split("&", 1)[0])
    port = url.split("port=", 1)[1].split("&", 1)[0]
    options = f"-k {folder} -p {port} -c listen_addresses='' -c fsync=off -c max_connections=200"
    started = subprocess.run(
        _as_server_user(
            [
                str(pg_bin() / "pg_ctl"),
                "-D",
                str(folder / "data"),
                "-o",
                options,
                "-l",
                str(folder / "server.log"),
                "-w",
                "start",
            ]
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert started.returncode == 0, started.stderr


@contextlib.contextmanager
def postgres_server():
    """Yields an SQLAlchemy URL of a fresh database served from a temporary folder."""
    binaries = pg_bin()
    # A short path: unix socket paths are limited to about 100 characters.
    folder = Path(tempfile.mkdtemp(prefix="kb-pg-"))
    data = folder / "data"
    port = _free_port()
    try:
        if os.geteuid() == 0:
            os.chmod(folder, 0o755)
            shutil.chown(folder, user="nobody")
        run = lambda *args: subprocess.run(
            _as_server_user(list(args)), capture_output=True, text=True, timeout=120, check=False
        )
        made = run(
            str(binaries / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "--no-sync",
            "-E",
            "UTF8",
        )
        assert made.returncode == 0, f"initdb failed: {made.stderr}"
        options = f"-k {folder} -p {port} -c listen_addresses='' -c fsync=off -c max_connections=200"
        started = run(
            str(binaries / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(folder / "server.log"),
            "-w",
            "-t",
            "60",
            "start",
        )
        assert started.returncode == 0, (
            f"pg_ctl start failed: {started.stderr} {(folder / 'server.log').read_text() if (folder / 'server.log').exists() else ''}"
        )
        try:
            yield f"postgresql+psycopg2://postgres@/postgres?host={folder}&port={port}"
        finally:
            run(str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
