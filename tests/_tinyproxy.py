"""Debian's tinyproxy, a real forward proxy, on a loopback port for one test.

Skipped with a clear reason where it is not installed (``.ci/run`` installs it).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Self

import pytest

__all__ = ["Tinyproxy"]


class Tinyproxy:
    """``tinyproxy -d`` with a config of its own; ``requests()`` reads what it forwarded."""

    def __init__(self, folder: Path, *, credentials: tuple[str, str] | None = None) -> None:
        if shutil.which("tinyproxy") is None:
            pytest.skip("tinyproxy is not installed (apt-get install tinyproxy; .ci/run does)")
        self._folder = folder
        self._credentials = credentials
        self._log = folder / "tinyproxy.log"
        self._process: subprocess.Popen[bytes] | None = None
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port: int = probe.getsockname()[1]

    def url(self, credentials: tuple[str, str] | None = None) -> str:
        """The proxy URL, with ``user:password@`` when ``credentials`` are given."""
        userinfo = f"{credentials[0]}:{credentials[1]}@" if credentials else ""
        return f"http://{userinfo}127.0.0.1:{self.port}"

    def requests(self) -> list[str]:
        """The request lines it received, in order (``POST http://...``, ``CONNECT h:p``)."""
        if not self._log.exists():
            return []
        marker = "Request (file descriptor "
        lines = self._log.read_text(errors="replace").splitlines()
        return [line.split("): ", 1)[1].rsplit(" HTTP/", 1)[0] for line in lines if marker in line]

    def __enter__(self) -> Self:
        config = [
            f"Port {self.port}",
            "Listen 127.0.0.1",
            "Allow 127.0.0.1",
            "Timeout 30",
            "MaxClients 200",
            f'LogFile "{self._log}"',
            "LogLevel Connect",
        ]
        if self._credentials:
            config.append(f"BasicAuth {self._credentials[0]} {self._credentials[1]}")
        path = self._folder / "tinyproxy.conf"
        path.write_text("\n".join(config) + "\n")
        self._process = subprocess.Popen(
            ["tinyproxy", "-d", "-c", str(path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:  # until it accepts connections (it has no readiness signal)
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            except OSError:
                if time.monotonic() > deadline or self._process.poll() is not None:
                    self.__exit__(None, None, None)
                    raise RuntimeError("tinyproxy did not start") from None
                time.sleep(0.01)
            else:
                return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(10)
