"""The createcall server of ``slow_server.py``, over TLS and HTTP/2 (hypercorn).

    python benchmarks/h2_server.py --port P --cert DIR [--delay 0.05] [--idle-close 1.0]

Writes ``DIR/ca.pem`` (the clients trust it) and serves with a certificate for 127.0.0.1.
``--idle-close T`` is hypercorn's ``keep_alive_timeout``: an HTTP/2 connection idle for T
seconds gets a GOAWAY and is closed, as behind a load balancer. ``GET /stats`` and
``POST /reset`` as in ``slow_server.py``. Prints ``ready`` once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
from pathlib import Path
from typing import Any

import trustme
from hypercorn.asyncio import serve
from hypercorn.config import Config
from servers import CALL_JSON, TOKEN_JSON

CALL_PATH = "/apiaccess/ccmessaging/v1/mobileagent/createcall"
TOKEN_PATH = "/apigovernance/api/oauth/tokenByAkSk"  # noqa: S105 - a path


def application(delay: float) -> Any:
    received: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": message["type"] + ".complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["path"]
        if path == CALL_PATH:
            received.append(json.loads(body)["called"])
            await asyncio.sleep(delay)
            answer = CALL_JSON.encode()
        elif path == TOKEN_PATH:
            answer = TOKEN_JSON.encode()
        elif path == "/stats":
            usage = resource.getrusage(resource.RUSAGE_SELF)
            answer = json.dumps(
                {"received": received, "cpu": usage.ru_utime + usage.ru_stime}
            ).encode()
        else:
            received.clear()
            answer = b"{}"
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(answer)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    return app


async def main_async(port: int, certs: Path, delay: float, idle_close: float | None) -> None:
    authority = trustme.CA()
    authority.cert_pem.write_to_path(str(certs / "ca.pem"))
    authority.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(
        str(certs / "server.pem")
    )
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.certfile = config.keyfile = str(certs / "server.pem")
    config.accesslog = config.errorlog = None
    if idle_close is not None:
        config.keep_alive_timeout = idle_close
    server = asyncio.ensure_future(serve(application(delay), config))
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            break
        except OSError:
            await asyncio.sleep(0.02)
    print("ready", flush=True)
    await server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cert", type=Path, required=True)
    parser.add_argument("--delay", type=float, default=0.05)
    parser.add_argument("--idle-close", type=float, default=None)
    args = parser.parse_args()
    asyncio.run(main_async(args.port, args.cert, args.delay, args.idle_close))


if __name__ == "__main__":
    main()
