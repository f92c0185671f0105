"""The pytest fixtures under their first module name (they live in ``ccmessaging_async_pytest``).

pytest loads the plugin by itself (the ``pytest11`` entry point); naming this module in
``pytest_plugins`` still works.
"""

from __future__ import annotations

from ccmessaging_async_pytest import (
    ccmessaging_emulator,
    ccmessaging_server,
    ccmessaging_session,
    ccmessaging_split_server,
)

__all__ = [
    "ccmessaging_emulator",
    "ccmessaging_server",
    "ccmessaging_session",
    "ccmessaging_split_server",
]
