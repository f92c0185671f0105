"""The ``CCMESSAGING_LOG`` switch: package logging turned on from the environment, once."""

from __future__ import annotations

import logging
import os
import sys

__all__ = ["ENV_LOG", "configure_from_env"]

ENV_LOG = "CCMESSAGING_LOG"
_configured = False


def configure_from_env() -> None:
    """Apply ``CCMESSAGING_LOG=<level>`` to the package logger, the first time only.

    A handler on stderr is added only when the application set none on the package
    logger; later calls (every new session) change nothing.
    """
    global _configured  # noqa: PLW0603 - a once-per-process switch
    if _configured:
        return
    _configured = True
    level = os.environ.get(ENV_LOG, "").strip().upper()
    if not level or level not in logging.getLevelNamesMapping():
        return
    package_logger = logging.getLogger("ccmessaging_async")
    package_logger.setLevel(level)
    if not package_logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        package_logger.addHandler(handler)
