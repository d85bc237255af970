"""Shared fixtures. Every test that takes ``db_url`` (or anything built on it) runs once per
database in ``--db`` (default: sqlite and postgresql), each on a fresh database of its own:
a new SQLite file, or a new PostgreSQL schema dropped afterwards."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from hotwash.settings import Settings, get_settings
from hotwash.store import Store, open_store

PG_CONNINFO = os.environ.get("HOTWASH_TEST_PG", "host=127.0.0.1 port=5432 user=postgres dbname=test")
DATA_DIR = Path(os.environ.get("HOTWASH_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data"))


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        default=os.environ.get("HOTWASH_TEST_DB", "sqlite,postgresql"),
        help="comma-separated databases to run store tests on: sqlite, postgresql",
    )


def pytest_sessionstart(session: pytest.Session) -> None:
    # Detector quality is measured on the real labelled data; locally a missing ../shared/data
    # skips those tests, but in CI it must fail loudly rather than pass with them skipped.
    if os.environ.get("CI") and not (DATA_DIR / "injection" / "dev.jsonl").exists():
        pytest.exit(f"the shared data set is missing at {DATA_DIR}: CI runs with ../shared/data beside the clone "
                    "(or set HOTWASH_DATA_DIR)", returncode=3)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "dialect" in metafunc.fixturenames:
        dialects = [d.strip() for d in metafunc.config.getoption("--db").split(",") if d.strip()]
        metafunc.parametrize("dialect", dialects)


def _pg_url(schema: str) -> str:
    params = dict(part.split("=", 1) for part in PG_CONNINFO.split())
    return (
        f"postgresql+psycopg://{params.get('user', 'postgres')}@{params.get('host', '127.0.0.1')}:"
        f"{params.get('port', '5432')}/{params.get('dbname', 'test')}?options=-csearch_path%3D{schema}"
    )


@pytest.fixture
def db_url(dialect: str, tmp_path: Path) -> Iterator[str]:
    if dialect == "sqlite":
        yield f"sqlite:///{tmp_path / 'store' / 'hotwash.db'}"
        return
    if dialect != "postgresql":
        raise pytest.UsageError(f"unknown --db dialect {dialect!r}")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_CONNINFO, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield _pg_url(schema)
    finally:
        with psycopg.connect(PG_CONNINFO, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    st = open_store(db_url, migrate=True)
    yield st
    st.dispose()


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return get_settings(home=tmp_path / ".hotwash", database_url=db_url)


@pytest.fixture
def workspace(tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory for CLI tests, its store at ``db_url`` (not yet migrated)."""
    ws = tmp_path / "ws"
    ws.mkdir()
    monkeypatch.chdir(ws)
    monkeypatch.setenv("HOTWASH_DATABASE_URL", db_url)
    monkeypatch.delenv("HOTWASH_HOME", raising=False)
    return ws


class LiveServer:
    """``hotwash serve``'s app run by uvicorn in a thread, on a free loopback port."""

    def __init__(self, settings: Settings) -> None:
        import socket
        import threading

        import uvicorn

        from hotwash.web import create_app

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=self.port,
                                log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LiveServer:
        import time

        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("test server did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def live_server(settings: Settings, store: Store) -> Iterator[LiveServer]:
    with LiveServer(settings) as server:
        yield server
