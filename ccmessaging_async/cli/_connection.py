"""How a command reaches the platform: its session, transport and event loop."""

from __future__ import annotations

import argparse
import importlib.util
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

from .._aiohttp import aiohttp_installed, aiohttp_transport
from .._config import ENV_BASE_URL
from .._errors import ConfigurationError
from .._session import AsyncSession

__all__ = ["add_insecure_option", "add_loop_option", "run_on_loop", "session_factory"]

T = TypeVar("T")


def add_loop_option(command: argparse.ArgumentParser) -> None:
    """Add ``--loop``: asyncio, or uvloop."""
    command.add_argument(
        "--loop",
        choices=("asyncio", "uvloop"),
        default="asyncio",
        help="the event loop; uvloop (pip install uvloop) makes ~1.2x the calls/s",
    )


def run_on_loop(job: Callable[..., Awaitable[T]], args: argparse.Namespace, *more: object) -> T:
    """Run ``job`` on the event loop ``--loop`` names."""
    uvloop = args.loop == "uvloop"
    if uvloop and importlib.util.find_spec("uvloop") is None:
        raise ConfigurationError("--loop uvloop needs uvloop: pip install uvloop")
    return anyio.run(job, *more, backend="asyncio", backend_options={"use_uvloop": uvloop})


def add_insecure_option(command: argparse.ArgumentParser) -> None:
    """Add ``--allow-insecure-http`` (unsafe)."""
    command.add_argument(
        "--allow-insecure-http",
        action="store_true",
        help=f"UNSAFE: let {ENV_BASE_URL} be plain http to a host other than loopback "
        "(the app secret and tokens then cross the network in clear text)",
    )


def session_factory(choice: str, *, insecure: bool) -> Callable[[], AsyncSession]:
    """Pick how a command builds its session: from the environment, over ``choice``.

    As curl does, the commands honour ``HTTPS_PROXY``/``NO_PROXY`` and ``SSL_CERT_FILE``.
    """
    if choice == "httpx" or (choice == "auto" and not aiohttp_installed()):
        return lambda: AsyncSession.from_env(trust_env=True, allow_insecure_http=insecure)
    if not aiohttp_installed():
        raise ConfigurationError(
            "--transport aiohttp needs the aiohttp extra: pip install 'ccmessaging-async[aiohttp]'"
        )
    return lambda: AsyncSession.from_env(
        transport=aiohttp_transport(trust_env=True), allow_insecure_http=insecure
    )
