"""The pace of a job in PostgreSQL, shared by its workers: kept in the job's row.

The row holds the job's rate, the current pace, the next free turn (``tat``: a GCRA on
the database's clock), a pause every worker honours, and when the pace was last lowered
and raised. A job with no rate has no pace until a worker is throttled; the pace found
then is shared the same way. :mod:`._shared_pace` is the worker's side.
"""

from __future__ import annotations

from typing import Any

import psycopg

from .._pacing import MIN_RATE
from ._store import Turns

__all__ = ["PostgresPace"]


class PostgresPace:
    """The pace of job ``job``: turns reserved on one connection, changes sent on another."""

    def __init__(
        self,
        reserving: psycopg.Connection[tuple[Any, ...]],
        reporting: psycopg.Connection[tuple[Any, ...]],
        job: int,
    ) -> None:
        self._reserving, self._reporting, self._job = reserving, reporting, job

    def set_rate(self, rate: float) -> None:
        """Make ``rate`` the job's rate: every worker's calls together, per second."""
        self._reserving.execute(
            "UPDATE ccmessaging.jobs SET pace = CASE WHEN rate IS DISTINCT FROM %(rate)s "
            "THEN %(rate)s ELSE least(pace, %(rate)s) END, rate = %(rate)s WHERE id = %(job)s",
            {"rate": rate, "job": self._job},
        )

    def reserve_turns(self, count: int, window: float) -> Turns | None:
        """Reserve ``count`` turns at the job's pace (``None``: the job has no pace yet).

        Turns are spaced by the pace from the job's next free turn (a GCRA on the
        database's clock, so all workers together keep to it), after any pause. Once a
        ``window`` has passed since the pace was last lowered or raised, and only while
        the workers wait for their turns (they use the pace), it climbs by a twentieth of
        the job's rate, never above it; with no rate (a pace found from throttling) by a
        twentieth of itself.
        """
        with self._reserving.transaction():
            found = self._reserving.execute(
                "SELECT pace, rate, "
                "extract(epoch FROM greatest(tat, paused_until, now()) - now()), "
                "lowered_at < now() - make_interval(secs => %(window)s) "
                "AND raised_at < now() - make_interval(secs => %(window)s) AND tat > now() "
                "FROM ccmessaging.jobs WHERE id = %(job)s FOR UPDATE",
                {"job": self._job, "window": window},
            ).fetchone()
            if found is None or found[0] is None:
                return None
            pace, rate, start_in, climbs = float(found[0]), found[1], float(found[2]), found[3]
            if not climbs:
                raised = pace
            elif rate is None:
                raised = pace * 1.05
            else:
                raised = min(float(rate), pace + float(rate) / 20)
            self._reserving.execute(
                "UPDATE ccmessaging.jobs SET tat = now() + make_interval(secs => %(ends)s), "
                "pace = %(pace)s, raised_at = CASE WHEN %(raised)s THEN now() ELSE raised_at END "
                "WHERE id = %(job)s",
                {
                    "ends": start_in + count / pace,
                    "pace": raised,
                    "raised": raised > pace,
                    "job": self._job,
                },
            )
        return Turns(start_in, 1.0 / pace, count)

    def slow_down(self, factor: float, window: float, found: float | None = None) -> None:
        """Lower the job's pace, unless it was lowered within ``window`` s.

        ``found``: the rate a worker measured the platform takes from it (its share): the
        pace becomes that times the workers running, if lower (a job with no pace yet gets
        it). Without: the pace is lowered by ``factor`` (a job with no pace keeps none).
        """
        self._reporting.execute(
            "UPDATE ccmessaging.jobs SET pace = CASE WHEN %(found)s::real IS NOT NULL "
            "THEN greatest(%(least)s, least(coalesce(pace, 'Infinity'), %(found)s * "
            "greatest(1, (SELECT count(*) FROM ccmessaging.workers WHERE job = %(job)s "
            "AND ended_at IS NULL AND expires_at > now())))) "
            "ELSE greatest(%(least)s, pace * %(factor)s) END, "
            "lowered_at = now() WHERE id = %(job)s "
            "AND (pace IS NOT NULL OR %(found)s::real IS NOT NULL) "
            "AND lowered_at < now() - make_interval(secs => %(window)s)",
            {
                "least": MIN_RATE,
                "factor": factor,
                "found": found,
                "job": self._job,
                "window": window,
            },
        )

    def pause(self, seconds: float) -> None:
        """Hold every worker's turns for ``seconds`` (a ``Retry-After`` seen by one)."""
        self._reporting.execute(
            "UPDATE ccmessaging.jobs SET paused_until = "
            "greatest(paused_until, now() + make_interval(secs => %s)) WHERE id = %s",
            (seconds, self._job),
        )

    def pace(self) -> float | None:
        """Return the job's pace now, calls per second (``None``: none yet, no rate)."""
        found = self._reserving.execute(
            "SELECT pace FROM ccmessaging.jobs WHERE id = %s", (self._job,)
        ).fetchone()
        return None if found is None or found[0] is None else float(found[0])
