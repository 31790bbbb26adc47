"""Throwaway servers the tests start on 127.0.0.1: a PostgreSQL cluster and an S3 (moto) server.

Each starts from nothing in a temporary folder on a free port and is stopped (and its folder
removed) at the end of the test session. When the binaries cannot be found or started the
fixture skips with the reason, never silently.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "MotoServer",
    "Postgres",
    "ServerUnavailable",
    "free_port",
    "postgres_cluster",
    "s3_server",
]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pg_bin(name: str) -> str | None:
    """A PostgreSQL server binary: on PATH, else Debian's versioned folder (newest)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return candidates[-1] if candidates else None


@dataclass(frozen=True)
class Postgres:
    """A running throwaway cluster."""

    url: str
    """SQLAlchemy URL of its ``impactgate`` database (``postgresql+psycopg://…``)."""
    port: int
    data: Path


class ServerUnavailable(RuntimeError):
    """The server's binaries are missing or it would not start; the message says which."""


@contextlib.contextmanager
def postgres_cluster() -> Iterator[Postgres]:
    """``initdb`` + ``pg_ctl start`` on a temporary folder and a free port; stopped after.

    PostgreSQL refuses to run as root: as root, the cluster is run as the ``postgres`` user
    that Debian's package creates.

    Raises:
        ServerUnavailable: no ``initdb``/``pg_ctl``, or the cluster did not start.
    """
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        raise ServerUnavailable(
            "PostgreSQL server binaries (initdb, pg_ctl) not found: install the Debian package "
            "'postgresql' (.ci/run does)"
        )
    prefix: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="impactgate-pg-"))
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError as exc:
            raise ServerUnavailable("running as root and there is no 'postgres' user") from exc
        os.chown(folder, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]
    data = folder / "data"
    port = free_port()
    log = folder / "server.log"

    def run(args: list[str], timeout: float) -> None:
        done = subprocess.run(
            [*prefix, *args], capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            raise ServerUnavailable(f"{' '.join(args[:2])} failed: {done.stderr[-2000:]}")

    started = False
    try:
        run(
            [initdb, "-D", str(data), "-U", "impactgate", "--auth=trust", "-E", "UTF8",
             "--no-sync"],
            timeout=120,
        )  # fmt: skip
        options = (
            f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={folder} "
            "-c fsync=off -c max_connections=100"
        )
        run([pg_ctl, "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start"], 90)
        started = True
        import psycopg

        deadline = time.monotonic() + 30
        while True:
            try:
                with psycopg.connect(
                    host="127.0.0.1", port=port, user="impactgate", dbname="postgres",
                    autocommit=True,
                ) as conn:  # fmt: skip
                    conn.execute("CREATE DATABASE impactgate")
                break
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield Postgres(f"postgresql+psycopg://impactgate@127.0.0.1:{port}/impactgate", port, data)
    finally:
        if started:
            subprocess.run(
                [*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"],
                capture_output=True,
                timeout=60,
                check=False,
            )
        shutil.rmtree(folder, ignore_errors=True)


@dataclass(frozen=True)
class MotoServer:
    """A running S3-compatible server (moto in server mode)."""

    endpoint: str
    port: int

    def environment(self) -> dict[str, str]:
        """What a client needs, the standard way: endpoint, region and (dummy) credentials."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
        }


@contextlib.contextmanager
def s3_server() -> Iterator[MotoServer]:
    """``moto_server`` on 127.0.0.1 and a free port, in its own process; stopped after.

    Raises:
        ServerUnavailable: moto's server extra is not installed or it did not answer.
    """
    try:
        import moto.server  # noqa: F401
    except ImportError as exc:
        raise ServerUnavailable(f"moto[server] is not installed ({exc})") from exc
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                err = process.stderr.read().decode(errors="replace") if process.stderr else ""
                raise ServerUnavailable(f"moto server exited: {err[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
                break
            if time.monotonic() > deadline:
                raise ServerUnavailable("moto server did not listen within 60 s")
            time.sleep(0.1)
        yield MotoServer(f"http://127.0.0.1:{port}", port)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
