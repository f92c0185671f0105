"""What every transport gives the sender: an :class:`Answer`, and the fast-exchange protocol."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import attrs

__all__ = ["Answer", "BodyLimits", "ExchangeTransport", "HiddenHeaders"]


class HiddenHeaders(list[tuple[str, str]]):
    """Request headers whose repr names them but never shows a value.

    One of them is ``Authorization``: a traceback rendered with its locals (pytest ``-l``,
    rich, error trackers) must not print the token.
    """

    def __repr__(self) -> str:
        return f"<headers {', '.join(name for name, _ in self)}>"


@attrs.frozen(slots=True)
class BodyLimits:
    """The most bytes read of a body: a 200's, and any other answer's."""

    success: int
    error: int

    def for_status(self, status: int) -> int:
        """Return the limit for an answer with ``status``."""
        return self.success if status == 200 else self.error


@attrs.frozen(slots=True)
class Answer:
    """What one exchange brought back: the status, two headers and a bounded body."""

    status: int
    retry_after: str | None
    content: bytes
    #: The body was longer than the limit and was cut.
    truncated: bool
    #: The gateway's ``X-Request-Id`` header, as sent.
    request_id: str | None = None
    #: The ``Content-Encoding`` of the body, which is never decoded (identity is asked).
    content_encoding: str | None = None

    @property
    def encoded(self) -> bool:
        """Whether the body came compressed although ``Accept-Encoding: identity`` was sent."""
        return self.content_encoding not in (None, "", "identity")


@runtime_checkable
class ExchangeTransport(Protocol):
    """A transport that can do one exchange without httpx's request and response objects.

    It raises httpx's transport errors, with a failure to connect as ``ConnectError`` /
    ``ConnectTimeout`` only: anything after the connection was made may have been sent.
    """

    async def exchange(  # noqa: PLR0917 - one positional call on the hot path
        self,
        method: str,
        url: str,
        headers: HiddenHeaders,
        body: bytes,
        timeout: dict[str, float | None],  # noqa: ASYNC109 - httpx's timeout dict, passed on
        limits: BodyLimits,
    ) -> Answer:
        """Send one request and read its bounded body."""
        ...
