"""A PostgreSQL database of the test run's own, for the job-store tests.

The server comes from ``CCMESSAGING_TEST_POSTGRES`` (a URL; by default the development
machines' ``postgresql://postgres@127.0.0.1:5432/test``). The run creates a database of
its own there and drops it at the end. Without a server the tests that need one are
skipped with one line saying how to point them at one, except in CI (``CI`` or
``CCMESSAGING_REQUIRE_POSTGRES`` set), where they fail.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import pytest

ENV_URL = "CCMESSAGING_TEST_POSTGRES"
DEFAULT_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _required() -> bool:
    return any(
        os.environ.get(name, "").lower() not in ("", "0", "false")
        for name in ("CI", "CCMESSAGING_REQUIRE_POSTGRES")
    )


def server_url() -> str:
    """The URL of the server's maintenance database."""
    return os.environ.get(ENV_URL) or DEFAULT_URL


def _with_database(url: str, name: str) -> str:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo  # noqa: PLC0415

    parts = conninfo_to_dict(url)
    parts["dbname"] = name
    host, port, user = parts.get("host", ""), parts.get("port", "5432"), parts.get("user", "")
    password = parts.get("password")
    if not password and set(parts) <= {"host", "port", "user", "dbname"}:
        return f"postgresql://{user}@{host}:{port}/{name}"
    return make_conninfo("", **parts)


@contextmanager
def own_database() -> Iterator[str]:
    """Create a database for this run; yield its URL; drop it afterwards."""
    try:
        import psycopg  # noqa: PLC0415 - the postgres extra
    except ImportError:
        _unavailable("psycopg is not installed (pip install -r tests/requirements.txt)")
    url = server_url()
    name = f"ccma_test_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        admin = psycopg.connect(url, autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        _unavailable(f"no PostgreSQL at {url} ({str(exc).strip().splitlines()[0]})")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield _with_database(url, name)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _unavailable(why: str) -> NoReturn:
    if _required():
        pytest.fail(f"PostgreSQL is required here (CI): {why}")
    pytest.skip(f"{why}; set {ENV_URL}=postgresql://user@host:port/db to run the job-store tests")
