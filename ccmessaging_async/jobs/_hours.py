"""Calling hours: when a number may be rung, in the called person's local time.

A number's time zones come from libphonenumber's data (the ``phone`` extra) for its
E.164 form; a number that spans several zones (a country or an area code that does) is
inside the hours only when it is inside them in every one. ``default_zone`` serves the
numbers libphonenumber places in no zone, and every number when the extra is missing or
the job read its numbers without a region. A row outside the hours is deferred to the
next moment it is inside them, never failed.
"""

from __future__ import annotations

import datetime
import functools
import re
import zoneinfo
from collections.abc import Iterator

import attrs

from .._errors import ConfigurationError
from ._numbers import phonenumbers_module

__all__ = ["CallingHours", "Opening"]

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WINDOW = re.compile(r"\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*")
#: How far ahead an opening is looked for (a week covers every day of the week).
_LOOK_AHEAD_DAYS = 8


@attrs.frozen
class Opening:
    """The next moment a number is inside its calling hours: when, and how to say it."""

    at: datetime.datetime
    #: ``09:00 Asia/Shanghai``: the opening in the zone that opens last.
    label: str


def _parse_window(window: str) -> tuple[datetime.time, datetime.time]:
    found = _WINDOW.fullmatch(window)
    if found is None:
        raise ConfigurationError(
            f"calling hours {window!r}: write them as HH:MM-HH:MM (09:00-20:00)"
        )
    start_h, start_m, end_h, end_m = (int(part) for part in found.groups())
    try:
        start = datetime.time(start_h, start_m)
        end = datetime.time(end_h, end_m) if (end_h, end_m) != (24, 0) else datetime.time.max
    except ValueError:
        raise ConfigurationError(f"calling hours {window!r}: not times of day") from None
    if start == end:
        raise ConfigurationError(f"calling hours {window!r}: the window is empty")
    return start, end


def _parse_days(days: str | None) -> frozenset[int]:
    if days is None:
        return frozenset(range(7))
    chosen: set[int] = set()
    for part in days.lower().replace(" ", "").split(","):
        first, _, last = part.partition("-")
        if first not in _DAYS or (last and last not in _DAYS):
            raise ConfigurationError(
                f"calling days {days!r}: use mon..sun, as ranges or lists (mon-fri, sat,sun)"
            )
        begin, end = _DAYS.index(first), _DAYS.index(last or first)
        span = (end - begin) % 7
        chosen.update((begin + i) % 7 for i in range(span + 1))
    return frozenset(chosen)


def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(
            f"time zone {name!r} is unknown (an IANA name such as Asia/Shanghai)"
        ) from None


@attrs.frozen
class CallingHours:
    """The hours a job may ring people, in each called person's local time.

    ``window`` is ``"09:00-20:00"`` (a window may run past midnight: ``"20:00-02:00"``;
    its end is not inside it); ``days`` is ``"mon-fri"``, ``"sat,sun"``... (every day
    when ``None``; the day a window opens on); ``default_zone`` (an IANA name) is the
    zone of a number libphonenumber places in none, or of every number without it.
    """

    window: str
    days: str | None = None
    default_zone: str | None = None
    _start: datetime.time = attrs.field(init=False, repr=False, eq=False)
    _end: datetime.time = attrs.field(init=False, repr=False, eq=False)
    _weekdays: frozenset[int] = attrs.field(init=False, repr=False, eq=False)
    _fallback: zoneinfo.ZoneInfo | None = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        start, end = _parse_window(self.window)
        object.__setattr__(self, "_start", start)
        object.__setattr__(self, "_end", end)
        object.__setattr__(self, "_weekdays", _parse_days(self.days))
        fallback = None if self.default_zone is None else _zone(self.default_zone)
        object.__setattr__(self, "_fallback", fallback)

    def check(self, default_region: str | None) -> None:
        """Raise :class:`ConfigurationError` if some numbers of a job would have no zone."""
        if self._fallback is not None:
            return
        if phonenumbers_module() is None:
            raise ConfigurationError(
                "calling hours need each number's time zone: install the phone extra "
                "(pip install 'ccmessaging-async[phone]') or give a zone (--tz ZONE)"
            )
        if default_region is None:
            raise ConfigurationError(
                "calling hours need each number's time zone: take the job in with a region "
                "(--region), so numbers without a country code have one, or give a zone "
                "(--tz ZONE)"
            )

    def zones(self, number: str) -> tuple[zoneinfo.ZoneInfo, ...]:
        """Return the zones of ``number`` (a row's key); empty if none and no default."""
        found = _zones_of(number) if number.startswith("+") else ()
        if found:
            return found
        return () if self._fallback is None else (self._fallback,)

    def _inside(self, moment: datetime.datetime, zone: zoneinfo.ZoneInfo) -> bool:
        local = moment.astimezone(zone)
        now, start, end = local.time(), self._start, self._end
        if start < end:
            return local.weekday() in self._weekdays and start <= now < end
        # Past midnight: the part after midnight belongs to the day before.
        if now >= start:
            return local.weekday() in self._weekdays
        return now < end and (local.weekday() - 1) % 7 in self._weekdays

    def opening(
        self, zones: tuple[zoneinfo.ZoneInfo, ...], now: datetime.datetime
    ) -> Opening | None:
        """Return when ``zones`` are next all inside the hours (``None``: they are now).

        Raises :class:`ValueError` if they never are together within a week.
        """
        if all(self._inside(now, zone) for zone in zones):
            return None
        for candidate, zone in sorted(self._starts(zones, now), key=lambda item: item[0]):
            if all(self._inside(candidate, other) for other in zones):
                return Opening(candidate, f"{self._start:%H:%M} {zone.key}")
        raise ValueError("its time zones are never inside the calling hours together")

    def _starts(
        self, zones: tuple[zoneinfo.ZoneInfo, ...], now: datetime.datetime
    ) -> Iterator[tuple[datetime.datetime, zoneinfo.ZoneInfo]]:
        for zone in zones:
            today = now.astimezone(zone).date()
            for ahead in range(_LOOK_AHEAD_DAYS):
                day = today + datetime.timedelta(days=ahead)
                local = datetime.datetime.combine(day, self._start, tzinfo=zone)
                moment = local.astimezone(datetime.UTC)
                if moment > now:
                    yield moment, zone


@functools.lru_cache(maxsize=4096)
def _zones_of(number: str) -> tuple[zoneinfo.ZoneInfo, ...]:
    phonenumbers = phonenumbers_module()
    if phonenumbers is None:
        return ()
    from phonenumbers import timezone  # noqa: PLC0415 - the phone extra

    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return ()
    names = [name for name in timezone.time_zones_for_number(parsed) if name != "Etc/Unknown"]
    zones: list[zoneinfo.ZoneInfo] = []
    for name in names:
        try:
            zones.append(zoneinfo.ZoneInfo(name))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            continue
    return tuple(zones)
