"""Test helpers for users of ccmessaging_async: an emulator, a loopback server, respx routes.

- :class:`Emulator`: an in-memory platform as an ASGI app; use it in-process with
  ``httpx.ASGITransport(app=emulator)`` or served by :class:`EmulatorServer` (uvicorn).
- :func:`mock_routes`: documented token and createcall answers on a respx router;
  :func:`add_responses`: the same on pytest-httpx's ``httpx_mock``.
- The pytest plugin (installed with the package) adds the fixtures
  ``ccmessaging_emulator``, ``ccmessaging_session``, ``ccmessaging_server`` and
  ``ccmessaging_split_server`` (the token service on a port of its own).
"""

from ._capacity import Capacity
from ._emulator import DropPoint, Emulator, RecordedCall, TokenFailure
from ._pytest_httpx import add_responses
from ._respx import MockedRoutes, mock_routes
from ._server import EmulatorServer

__all__ = [
    "Capacity",
    "DropPoint",
    "Emulator",
    "EmulatorServer",
    "MockedRoutes",
    "RecordedCall",
    "TokenFailure",
    "add_responses",
    "mock_routes",
]
