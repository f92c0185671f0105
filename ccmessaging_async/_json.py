"""JSON from the platform, with a bound on nesting that the standard parser lacks.

``json.loads`` recurses once per level of nesting: a body of a thousand ``[`` raises
``RecursionError``, which is not a ``ValueError`` and escaped the SDK's typing of bad
bodies. No answer of the platform nests deeper than a few levels.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["MAX_JSON_DEPTH", "loads"]

#: The deepest nesting of arrays and objects accepted in an answer.
MAX_JSON_DEPTH = 32

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def _depth(content: bytes) -> int:
    depth = deepest = 0
    for byte in _STRING.sub(b"", content):
        if byte in b"[{":
            depth += 1
            deepest = max(deepest, depth)
        elif byte in b"]}":
            depth -= 1
    return deepest


def loads(content: bytes) -> Any:
    """Parse ``content``; raise ``ValueError`` for bad JSON or nesting past the bound."""
    # Counting brackets is cheap; only a body with many of them is looked at closely.
    if content.count(b"[") + content.count(b"{") > MAX_JSON_DEPTH and (
        _depth(content) > MAX_JSON_DEPTH
    ):
        raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH} levels")
    return json.loads(content)
