"""A job's numbers: checked and normalised at import, with a key that says who is called.

With the ``phone`` extra (Google's libphonenumber data, through ``phonenumbers``), a
number with a country code, or any number when the job has a default region, must be a
valid number; its key is its E.164 form, so ``13800000001`` and ``+86 138 0000 0001`` (with
``default_region="CN"``) are the same person. A number with no country code in a job with
no region, or any number without the extra, is checked for digits (after an optional
``+``; spaces, dashes, dots and brackets are ignored) and length only, and its key is
those digits as written.

What is sent is the number as written, without its separators, unless the job sends
numbers as E.164 or in national form: the platform's dial plan is the operator's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from types import ModuleType
from typing import Literal

import attrs

from .._errors import ConfigurationError
from ._input import InputRow

__all__ = [
    "PHONE_EXTRA",
    "SEND_AS",
    "NumberPlan",
    "NumberReader",
    "checked_numbers",
    "phonenumbers_module",
]

SEND_AS = ("input", "e164", "national")
PHONE_EXTRA = (
    "validating numbers by their region needs the phone extra: "
    "pip install 'ccmessaging-async[phone]'"
)
_SEPARATORS = re.compile(r"[\s\-.()/]")
_DIGITS = re.compile(r"\+?[0-9]{3,20}")


def phonenumbers_module() -> ModuleType | None:
    """``phonenumbers`` if the ``phone`` extra is installed, else ``None``."""
    try:
        import phonenumbers  # noqa: PLC0415 - the phone extra
    except ImportError:
        return None
    return phonenumbers


@attrs.frozen
class NumberPlan:
    """How a job reads the numbers it is given and how it sends them.

    ``default_region`` (an ISO 3166 code such as ``"CN"``) says how to read numbers written
    without a country code; ``send_as`` is ``"input"`` (as written, without separators),
    ``"e164"`` or ``"national"``. Both but the defaults need the ``phone`` extra.
    """

    default_region: str | None = attrs.field(default=None)
    send_as: Literal["input", "e164", "national"] = attrs.field(default="input")

    @default_region.validator
    def _check_region(self, _attribute: object, region: str | None) -> None:
        if region is None:
            return
        phonenumbers = phonenumbers_module()
        if phonenumbers is None:
            raise ConfigurationError(PHONE_EXTRA)
        if region.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ConfigurationError(
                f"default_region {region!r} is not a region code libphonenumber knows "
                "(two letters, such as CN or US)"
            )

    @send_as.validator
    def _check_send_as(self, _attribute: object, send_as: str) -> None:
        if send_as not in SEND_AS:
            raise ConfigurationError(
                f"send_as must be one of {', '.join(SEND_AS)}, not {send_as!r}"
            )
        if send_as != "input" and phonenumbers_module() is None:
            raise ConfigurationError(
                f"sending numbers as {send_as} needs the phone extra: "
                "pip install 'ccmessaging-async[phone]'"
            )


def checked_numbers(rows: Iterable[InputRow], plan: NumberPlan) -> Iterator[InputRow]:
    """Give each row its number's key and the number to send, or fail it with the reason."""
    reader = NumberReader(plan)
    for row in rows:
        if row.error is not None or row.called is None:
            yield row
            continue
        read = reader.read(row.called)
        if isinstance(read, str):
            yield attrs.evolve(row, called=None, error=f"InvalidNumberError: called {read}")
        else:
            yield attrs.evolve(row, called=read[1], number=read[0])


class NumberReader:
    """Reads numbers as a job with ``plan`` does: each one's key and the form it is sent in."""

    def __init__(self, plan: NumberPlan) -> None:
        self._plan = plan
        self._phonenumbers = phonenumbers_module()
        self._region = plan.default_region.upper() if plan.default_region else None

    def read(self, given: str) -> tuple[str, str] | str:
        """``(key, number to send)``, or why ``given`` is not a number to call."""
        written = _SEPARATORS.sub("", given)
        if not _DIGITS.fullmatch(written):
            return "is not a phone number (digits, with an optional leading +)"
        if self._phonenumbers is None or (self._region is None and not written.startswith("+")):
            if self._plan.send_as != "input":
                return f"has no country code: give a region to send it as {self._plan.send_as}"
            return written, written
        return self._by_region(written, self._phonenumbers)

    def _by_region(self, written: str, phonenumbers: ModuleType) -> tuple[str, str] | str:
        try:
            parsed = phonenumbers.parse(written, self._region)
        except phonenumbers.NumberParseException as exc:
            return f"is not a phone number ({str(exc).split(') ', 1)[-1]})"
        if not phonenumbers.is_valid_number(parsed):
            national = self._region and not written.startswith("+")
            return (
                f"is not a valid number {f'in region {self._region}' if national else 'anywhere'}"
            )
        e164: str = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        if self._plan.send_as == "e164":
            return e164, e164
        if self._plan.send_as == "national":
            national_form = phonenumbers.format_number(
                parsed, phonenumbers.PhoneNumberFormat.NATIONAL
            )
            return e164, _SEPARATORS.sub("", national_form)
        return e164, written
