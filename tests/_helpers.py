"""Test helpers: canned wire answers, constants, a fake clock, an in-process session."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from ccmessaging_async import AsyncSession
from ccmessaging_async.testing import Emulator

BASE_URL = "https://127.0.0.1:8443"
TOKEN_PATH = "/apigovernance/api/oauth/tokenByAkSk"
CALL_PATH = "/apiaccess/ccmessaging/v1/mobileagent/createcall"
APP_KEY = "test-app-key"
APP_SECRET = "s3cr3t-app-secret-value"


def token_json(value: str = "tok-1", expires: Any = "3600") -> dict[str, Any]:
    """A token-service answer as documented (numbers as strings)."""
    return {
        "AccessToken": value,
        "ApplyType": "Bearer",
        "CreateTime": "1545650171",
        "Expires": expires,
        "Scope": "default",
        "AppKey": APP_KEY,
        "UserID": "Anonymous",
    }


def call_json(serial: str = "1") -> dict[str, Any]:
    """A successful createcall answer."""
    return {
        "resultCode": "0",
        "resultDesc": "Success",
        "resultData": {
            "callSerialNo": serial,
            "sipServiceAddress": "10.137.203.215:5063",
            "accesscode": "179080024609291",
        },
    }


def tokens_in_order(*values: str, expires: Any = "3600") -> list[httpx.Response]:
    """Token answers handing out ``values`` one after another."""
    return [httpx.Response(200, json=token_json(v, expires)) for v in values]


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def emulator_env(url: str, app_key: str, app_secret: str) -> dict[str, str]:
    """The process environment with the CCMESSAGING_* variables pointing at an emulator."""
    return {
        **os.environ,
        "CCMESSAGING_BASE_URL": url,
        "CCMESSAGING_APP_KEY": app_key,
        "CCMESSAGING_APP_SECRET": app_secret,
    }


def reachable_reprs(root: object, depth: int = 3) -> list[str]:
    """The repr of ``root`` and of every object reachable through its attributes.

    A sweep for secrets: whatever a debugger, a crash reporter or ``vars()`` would show.
    """
    texts: list[str] = []
    seen: set[int] = set()
    layer = [root]
    for _ in range(depth + 1):
        following = []
        for item in layer:
            if id(item) in seen or isinstance(item, str | bytes | int | float | type(None)):
                continue
            seen.add(id(item))
            texts.append(repr(item))
            following += _attribute_values(item)
        layer = following
    return texts


def _attribute_values(item: object) -> list[object]:
    values = list(getattr(item, "__dict__", {}).values())
    for cls in type(item).__mro__:
        for name in getattr(cls, "__slots__", ()):
            if hasattr(item, name):
                values.append(getattr(item, name))
    return values


def run_pytest(folder: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """Run pytest in ``folder`` as a user's project would: no config of ours, no coverage."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--no-cov"]
    return subprocess.run(
        [*command, "-c", "/dev/null", *arguments],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def in_process_session(emulator: Emulator) -> AsyncSession:
    """A session on ``emulator`` in-process (httpx's ASGI transport), default policies."""
    return AsyncSession(
        "http://127.0.0.1",
        emulator.app_key,
        emulator.app_secret,
        transport=httpx.ASGITransport(app=emulator),
    )
