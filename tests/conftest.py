"""Shared test set-up: offline switches, and a guard that fails any non-loopback connection."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evals._env import apply_offline_defaults

pytest_plugins = ["pytester"]

apply_offline_defaults()

ROOT = Path(__file__).resolve().parents[1]
SHARED_BENCHMARKS = ROOT.parent / "shared" / "benchmarks"


def _is_loopback(host: Any) -> bool:
    if host in (None, "", "localhost"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


class NetworkBlocked(OSError):
    """Raised when a test tries to reach anything but 127.0.0.1."""


@pytest.fixture(autouse=True, scope="session")
def _no_network() -> Iterator[None]:
    real_connect = socket.socket.connect
    real_getaddrinfo = socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            raise NetworkBlocked(f"tests may not connect to {address!r}; use a local server")
        return real_connect(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if not _is_loopback(host):
            raise NetworkBlocked(f"tests may not resolve {host!r}; use 127.0.0.1")
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.getaddrinfo = getaddrinfo
    try:
        yield
    finally:
        socket.socket.connect = real_connect  # type: ignore[method-assign]
        socket.getaddrinfo = real_getaddrinfo


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Caches (outputs, model replies) in a folder of this test session, never the user's."""
    import os

    previous = os.environ.get("IMPACTGATE_CACHE_DIR")
    os.environ["IMPACTGATE_CACHE_DIR"] = str(tmp_path_factory.mktemp("impactgate-cache"))
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("IMPACTGATE_CACHE_DIR", None)
        else:
            os.environ["IMPACTGATE_CACHE_DIR"] = previous


@pytest.fixture
def root() -> Path:
    """The repository root (contracts, datasets and examples live here)."""
    return ROOT


def _unavailable(reason: str) -> None:
    """Skip for a missing server; in CI (which installs it) that is a failure instead."""
    import os

    if os.environ.get("CI") == "true":
        pytest.fail(f"CI installs this server, yet: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """SQLAlchemy URL of a throwaway PostgreSQL database (initdb + pg_ctl, a free port)."""
    from tests.servers import ServerUnavailable, postgres_cluster

    try:
        cluster = postgres_cluster()
        server = cluster.__enter__()
    except ServerUnavailable as exc:
        _unavailable(str(exc))
    try:
        yield server.url
    finally:
        cluster.__exit__(None, None, None)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[dict[str, str]]:
    """A local S3-compatible server (moto in server mode): the environment a client needs."""
    from tests.servers import ServerUnavailable, s3_server

    try:
        context = s3_server()
        server = context.__enter__()
    except ServerUnavailable as exc:
        _unavailable(str(exc))
    try:
        yield server.environment()
    finally:
        context.__exit__(None, None, None)


@pytest.fixture
def postgres_db(postgres_url: str) -> str:
    """A fresh, empty database on the session's PostgreSQL cluster, for one test."""
    import secrets

    import psycopg
    import sqlalchemy as sa

    url = sa.make_url(postgres_url)
    name = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(
        host=url.host, port=url.port, user=url.username, dbname="postgres", autocommit=True
    ) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return url.set(database=name).render_as_string(hide_password=False)


_WEIGHT = {"server": 3, "harness": 2, "model": 1, "long": 0.5}


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules that start servers, the Prefect harness or models run first, then ``long`` ones.

    The default run spreads whole modules over two worker processes (``--dist loadscope``),
    each taking the next module as it finishes one: the long modules go out first, so both
    workers finish together instead of one waiting on a late server test. ``long`` marks the
    few modules of several seconds that need none of those (the examples' 90-day history), so
    the fast subset balances the same way.
    """

    def module(item: pytest.Item) -> str:
        return item.nodeid.split("::")[0]

    weight: dict[str, int] = {}
    for item in items:
        marks = [_WEIGHT.get(mark.name, 0) for mark in item.iter_markers()]
        weight[module(item)] = max(weight.get(module(item), 0), *marks, 0)
    items.sort(key=lambda item: -weight[module(item)])
