"""Reading a batch job's input: strict CSV or JSONL, decoded line by line, streamed.

A problem with the file as a whole (broken quoting, an unknown or duplicate column, a
results file given as input) refuses the job with :class:`JobRefusedError` before anything
is dialled. A problem confined to one row (a bad byte, a bad number, malformed JSON) fails
that row only, with its line number.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import attrs

from .._errors import InvalidRequestError
from .._models import CreateCallRequest
from ._errors import JobRefusedError
from ._records import InputIdentity

__all__ = ["InputRow", "RequestRows", "identify", "is_jsonl", "read_rows"]

FIELDS = ("called", "caller_present", "call_data")
_ALIASES = {"callerPresent": "caller_present", "callData": "call_data"}
_NUMBERS = ("called", "caller_present")
_JSONL_SUFFIXES = (".jsonl", ".ndjson", ".json")
_REPORT_KEYS = frozenset({"row", "status", "result", "error"})


@attrs.frozen(slots=True)
class InputRow:
    """One data row: its position, first line, digest, and its fields or its error."""

    #: Position among the data rows, from 0.
    row: int
    #: The row's first line in the file, from 1.
    line: int
    #: A short hash of the row's bytes: how a resume tells that the row changed.
    digest: bytes
    called: str | None = None
    caller_present: str | None = None
    call_data: str | None = None
    #: Why the row cannot be sent (then it fails without being dialled).
    error: str | None = None
    #: Who ``called`` reaches, as the job's number plan reads it (see ``_numbers``).
    number: str | None = None


def identify(path: Path) -> InputIdentity:
    """Size and SHA-256 of ``path``, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return InputIdentity(size, digest.hexdigest())


def is_jsonl(path: Path) -> bool:
    """Whether ``path`` is read as JSONL (by its suffix) rather than CSV."""
    return path.suffix.lower() in _JSONL_SUFFIXES


def read_rows(path: Path) -> Iterator[InputRow]:
    """Stream the data rows of a CSV (header ``called,caller_present,call_data``) or JSONL file.

    Raises :class:`JobRefusedError` (naming the line) for a problem with the file as a whole.
    """
    with path.open("rb") as handle:
        if is_jsonl(path):
            yield from _jsonl_rows(path.name, handle)
        else:
            yield from _csv_rows(path.name, handle)


class RequestRows:
    """The rows of an iterable of requests (a job made by a program, not from a file).

    Each request is one row, identified by its canonical JSON; the input's identity (size
    and SHA-256 of those lines) is known once the rows have been read.
    """

    def __init__(self, requests: Iterable[CreateCallRequest]) -> None:
        self._requests = requests
        self._size = 0
        self._sha256 = hashlib.sha256()

    def __iter__(self) -> Iterator[InputRow]:
        for row, request in enumerate(self._requests):
            fields = {
                "called": request.called,
                "caller_present": request.caller_present,
                "call_data": request.call_data,
            }
            raw = json.dumps(fields, ensure_ascii=False, sort_keys=True).encode() + b"\n"
            self._size += len(raw)
            self._sha256.update(raw)
            yield InputRow(row, row + 1, _row_digest(raw), **fields)

    def identity(self) -> InputIdentity:
        """Size and SHA-256 of the rows read so far (all of them, once iterated)."""
        return InputIdentity(self._size, self._sha256.hexdigest())


def _row_digest(raw: bytes) -> bytes:
    return hashlib.blake2b(raw, digest_size=8).digest()


def _checked_row(row: int, line: int, digest: bytes, values: dict[str, Any]) -> InputRow:
    """Build the row from its named values, or record why it cannot be sent."""
    fields = {name: value for name, value in values.items() if value not in (None, "")}
    if "called" not in fields:
        return InputRow(row, line, digest, error="InvalidRequestError: called is missing")
    try:
        CreateCallRequest(**fields)
    except InvalidRequestError as exc:
        return InputRow(row, line, digest, error=f"InvalidRequestError: {exc}")
    return InputRow(row, line, digest, **fields)


class _Lines:
    """The physical lines of a binary file, each decoded on its own.

    Remembers the bytes of the lines read since the last :meth:`take`, and why any of them
    is not UTF-8, so that a bad byte fails only the row it is in.
    """

    def __init__(self, handle: IO[bytes]) -> None:
        self._raw_lines = iter(handle)
        self.number = 0
        self._raw: list[bytes] = []
        self._bad: list[str] = []

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        raw = next(self._raw_lines)
        self.number += 1
        self._raw.append(raw)
        if self.number == 1 and raw.startswith(codecs.BOM_UTF8):  # Excel's "CSV UTF-8"
            raw = raw[len(codecs.BOM_UTF8) :]
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            self._bad.append(
                f"line {self.number} is not UTF-8 (byte 0x{raw[exc.start]:02x} at column "
                f"{exc.start + 1})"
            )
            return raw.decode("utf-8", "replace")

    def take(self) -> tuple[int, bytes, str | None]:
        """First line, digest and decoding error of the lines read since the last take."""
        first = self.number - len(self._raw) + 1
        digest = _row_digest(b"".join(self._raw))
        bad = self._bad[0] if self._bad else None
        self._raw.clear()
        self._bad.clear()
        return first, digest, bad


def _csv_header(name: str, cells: list[str]) -> list[str]:
    columns = [_ALIASES.get(cell.strip(), cell.strip()) for cell in cells]
    for position, column in enumerate(columns, start=1):
        if column not in FIELDS:
            shown = f"column {position} has no name" if not column else f"unknown column {column!r}"
            raise JobRefusedError(
                f"{name} line 1: {shown}; the columns are {', '.join(FIELDS)} (a misspelt "
                "column would silently dial without its value)"
            )
        if columns.count(column) > 1:
            raise JobRefusedError(f"{name} line 1: the column {column!r} appears twice")
    if "called" not in columns:
        raise JobRefusedError(f"{name} line 1: the header must name the column 'called'")
    return columns


def _csv_rows(name: str, handle: IO[bytes]) -> Iterator[InputRow]:
    lines = _Lines(handle)
    reader = csv.reader(lines, strict=True)
    columns: list[str] | None = None
    row = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            first, _, _ = lines.take()
            raise JobRefusedError(
                f"{name} line {first}: not valid CSV ({exc}); look for a stray '\"' in the "
                "row that starts there"
            ) from None
        first, digest, bad = lines.take()
        if not cells:  # a blank line
            continue
        if columns is None:
            columns = _csv_header(name, cells)
            continue
        values = dict(zip(columns, cells, strict=False))
        if lines.number > first and any("\n" in values.get(f, "") for f in _NUMBERS):
            raise JobRefusedError(
                f"{name} line {first}: a quoted number runs on to line {lines.number}; look "
                "for a stray '\"' in that row"
            )
        if bad is not None:
            yield InputRow(row, first, digest, error=f"InvalidRequestError: {bad}")
        elif len(cells) > len(columns):
            yield InputRow(
                row, first, digest, error="InvalidRequestError: more cells than the header"
            )
        elif quoted := next((f for f in _NUMBERS if '"' in values.get(f, "")), None):
            yield InputRow(
                row, first, digest, error=f"InvalidRequestError: {quoted} holds a stray '\"'"
            )
        else:
            yield _checked_row(row, first, digest, values)
        row += 1


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, value in pairs:
        if key in values:
            raise _DuplicateKeyError(key)
        values[key] = value
    return values


class _DuplicateKeyError(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _jsonl_fields(name: str, line: int, values: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key, value in values.items():
        field = _ALIASES.get(key, key)
        if field not in FIELDS:
            hint = (
                " (this looks like a report of an earlier job)"
                if values.keys() >= _REPORT_KEYS
                else f"; the keys are {', '.join(FIELDS)}"
            )
            raise JobRefusedError(f"{name} line {line}: unknown key {key!r}{hint}")
        if field in fields:
            raise JobRefusedError(f"{name} line {line}: {field!r} is given twice")
        # A number written as a JSON integer (spreadsheets and some CRMs export them so)
        # is its digits; a float or a boolean stays what it is, and fails its row.
        is_digits = type(value) is int and value >= 0
        fields[field] = str(value) if field in _NUMBERS and is_digits else value
    return fields


def _jsonl_rows(name: str, handle: IO[bytes]) -> Iterator[InputRow]:
    row = 0
    for line, raw in enumerate(handle, start=1):
        text = raw[len(codecs.BOM_UTF8) :] if line == 1 and raw.startswith(codecs.BOM_UTF8) else raw
        if not text.strip():
            continue
        digest = _row_digest(raw)
        try:
            values = json.loads(text.decode("utf-8"), object_pairs_hook=_no_duplicate_keys)
        except _DuplicateKeyError as exc:
            raise JobRefusedError(
                f"{name} line {line}: the key {exc.key!r} appears twice"
            ) from None
        except UnicodeDecodeError as exc:
            error = (
                f"line {line} is not UTF-8 (byte 0x{text[exc.start]:02x} at column {exc.start + 1})"
            )
            yield InputRow(row, line, digest, error=f"InvalidRequestError: {error}")
        except json.JSONDecodeError as exc:
            yield InputRow(row, line, digest, error=f"InvalidRequestError: not JSON ({exc.msg})")
        else:
            if isinstance(values, dict):
                yield _checked_row(row, line, digest, _jsonl_fields(name, line, values))
            else:
                error = "InvalidRequestError: a JSONL line must hold a JSON object"
                yield InputRow(row, line, digest, error=error)
        row += 1
