"""The fixed-response nginx server used for client throughput runs."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

TOKEN_JSON = json.dumps(
    {
        "AccessToken": "bench-access-token-0123456789",
        "ApplyType": "Bearer",
        "CreateTime": "1545650171",
        "Expires": "3600",
        "Scope": "default",
        "AppKey": "bench-app-key",
        "UserID": "Anonymous",
    }
)
CALL_JSON = json.dumps(
    {
        "resultCode": "0",
        "resultDesc": "Success",
        "resultData": {
            "callSerialNo": "000000000001",
            "sipServiceAddress": "10.137.203.215:5063",
            "accesscode": "179080024609291",
        },
    }
)

NGINX_CONF = """
daemon off;
master_process off;
worker_processes 1;
error_log {root}/error.log warn;
pid {root}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {root}/body;
    proxy_temp_path {root}/proxy;
    fastcgi_temp_path {root}/fastcgi;
    uwsgi_temp_path {root}/uwsgi;
    scgi_temp_path {root}/scgi;
    keepalive_requests 10000000;
    keepalive_timeout 65s;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        default_type application/json;
        location = /apigovernance/api/oauth/tokenByAkSk {{ return 200 '{token}'; }}
        location = /apiaccess/ccmessaging/v1/mobileagent/createcall {{ return 200 '{call}'; }}
    }}
}}
"""


def ensure_tools(*names: str) -> None:
    """Install nginx / wrk from Debian's packages when they are missing."""
    missing = [name for name in names if shutil.which(name) is None]
    if not missing:
        return
    packages = {"nginx": "nginx-light", "wrk": "wrk"}
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", *(packages[name] for name in missing)],
        check=True,
        env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def nginx(cpu: int) -> Iterator[str]:
    """Serve the documented token and createcall answers with nginx pinned to ``cpu``."""
    ensure_tools("nginx")
    with tempfile.TemporaryDirectory() as root:
        port = free_port()
        conf = Path(root) / "nginx.conf"
        conf.write_text(NGINX_CONF.format(root=root, port=port, token=TOKEN_JSON, call=CALL_JSON))
        nginx_path = shutil.which("nginx") or "/usr/sbin/nginx"
        process = subprocess.Popen(
            ["taskset", "-c", str(cpu), nginx_path, "-p", root, "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        error = process.stderr.read() if process.stderr else b""
                        raise RuntimeError(f"nginx did not start: {error!r}") from None
                    time.sleep(0.05)
            yield f"http://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(10)
