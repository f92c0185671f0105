"""SPEC section 3 as a table: decide() over every kind of failure, backoff and the budget."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ccmessaging_async import (
    AuthenticationError,
    CCMessagingError,
    ConfigurationError,
    ConnectionLostError,
    InvalidRequestError,
    NotSentError,
    RequestRejectedError,
    ResponseDecodeError,
    ResultCodeError,
    RetryPolicy,
    ServerError,
    ThrottledError,
)
from ccmessaging_async._retry import Resend, RetryBudget, backoff, decide

POLICY = RetryPolicy(max_resends=2, backoff_initial=0.2, backoff_max=5.0, max_retry_after=30.0)


def rejected(status: int, retry_after: float | None = None) -> CCMessagingError:
    kind = ThrottledError if status == 429 else RequestRejectedError
    return kind("x", status_code=status, retry_after=retry_after)


FLOW_CONTROL = ThrottledError("x", status_code=200, code="10010000002")


def step(
    happened: CCMessagingError,
    *,
    resends: int = 0,
    token_refreshed: bool = False,
    budget_left: bool = True,
    draw: float = 1.0,
    paced: bool = False,
) -> Resend | CCMessagingError:
    return decide(
        happened,
        resends=resends,
        token_refreshed=token_refreshed,
        budget_left=budget_left,
        paced=paced,
        policy=POLICY,
        draw=draw,
    )


# Each row: what happened, the state, and what SPEC section 3 says follows.
RESENT = [
    # provably unsent: connection not made, no pool slot, incomplete write
    ("not sent, first time", NotSentError("x"), {}, Resend(0.2, spends_budget=True)),
    ("not sent, second time", NotSentError("x"), {"resends": 1}, Resend(0.4, spends_budget=True)),
    # gateway refused the token: one refresh and one re-send, free of policy and budget
    (
        "token refused",
        AuthenticationError("x", status_code=403),
        {"resends": 2, "budget_left": False},
        Resend(0.0, spends_budget=False, refresh_token=True),
    ),
    # 429: Retry-After honoured instead of the backoff, never free of the budget
    ("429 with Retry-After", rejected(429, 3.0), {}, Resend(3.0, spends_budget=True)),
    ("429 with Retry-After 0", rejected(429, 0.0), {}, Resend(0.0, spends_budget=True)),
    ("429 without Retry-After", rejected(429), {}, Resend(0.2, spends_budget=True)),
    # resultCode 10010000002 (SPEC section 4): too fast, like a 429
    (
        "flow control",
        FLOW_CONTROL,
        {},
        Resend(0.2, spends_budget=True),
    ),
]

FINAL = [
    ("not sent, resends used up", NotSentError("x"), {"resends": 2}),
    ("not sent, budget empty", NotSentError("x"), {"budget_left": False}),
    ("token refused after a refresh", AuthenticationError("x"), {"token_refreshed": True}),
    ("429 asking for too long", rejected(429, 31.0), {}),
    ("429 without Retry-After, budget empty", rejected(429), {"budget_left": False}),
    ("429 with Retry-After, budget empty", rejected(429, 0.0), {"budget_left": False}),
    ("429, resends used up", rejected(429, 1.0), {"resends": 2}),
    ("429 in a batch: its pace takes it", rejected(429, 1.0), {"paced": True}),
    ("flow control in a batch", FLOW_CONTROL, {"paced": True}),
    ("4xx rejection", rejected(400), {}),
    ("404", rejected(404), {}),
    ("result code", ResultCodeError("30010000001", "no"), {}),
    ("invalid request", InvalidRequestError("x"), {}),
    # outcome unknown: never re-sent, whatever the state
    ("written then lost", ConnectionLostError("x"), {}),
    ("5xx", ServerError("x", status_code=503, retry_after=1.0), {}),
    ("undecodable 200", ResponseDecodeError("x"), {}),
]


@pytest.mark.parametrize(
    ("happened", "state", "expected"),
    [row[1:] for row in RESENT],
    ids=[row[0] for row in RESENT],
)
def test_what_spec_section_3_resends(
    happened: CCMessagingError, state: dict[str, object], expected: Resend
) -> None:
    """Each re-sendable failure is re-sent with the delay and budget the rule gives."""
    assert step(happened, **state) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("happened", "state"), [row[1:] for row in FINAL], ids=[row[0] for row in FINAL]
)
def test_what_spec_section_3_ends(happened: CCMessagingError, state: dict[str, object]) -> None:
    """Every other failure is final: the error itself is returned, nothing is re-sent."""
    assert step(happened, **state) is happened  # type: ignore[arg-type]


@given(
    resends=st.integers(0, 5),
    token_refreshed=st.booleans(),
    budget_left=st.booleans(),
    draw=st.floats(0, 1),
    status=st.integers(500, 599),
)
def test_outcome_unknown_is_never_resent(
    resends: int, token_refreshed: bool, budget_left: bool, draw: float, status: int
) -> None:
    """Whatever the state, a call that may exist is never re-sent."""
    for happened in (
        ConnectionLostError("x"),
        ServerError("x", status_code=status, retry_after=0.0),
        ResponseDecodeError("x"),
    ):
        result = step(
            happened,
            resends=resends,
            token_refreshed=token_refreshed,
            budget_left=budget_left,
            draw=draw,
        )
        assert result is happened


@given(
    attempt=st.integers(-5, 10**9),
    initial=st.floats(0, 1e6),
    maximum=st.floats(0, 1e6),
    draw=st.floats(-1, 2),
    fixed=st.sampled_from([0.0, 0.5]),
)
def test_backoff_is_bounded_for_any_input(
    attempt: int, initial: float, maximum: float, draw: float, fixed: float
) -> None:
    """The delay is finite, never negative and never above the maximum, for any attempt."""
    delay = backoff(attempt, initial, maximum, draw, fixed=fixed)
    assert math.isfinite(delay)
    assert 0 <= delay <= maximum


def test_backoff_doubles_to_its_cap_and_jitters_within_it() -> None:
    """The ceiling doubles per attempt up to the maximum; the draw places the delay below it."""
    assert [backoff(n, 0.2, 1.0, 1.0) for n in (1, 2, 3, 4)] == [0.2, 0.4, 0.8, 1.0]
    assert backoff(3, 0.2, 1.0, 0.0) == 0.0
    assert backoff(3, 0.2, 1.0, 0.0, fixed=0.5) == 0.4  # half fixed: never below half


def spendable(budget: RetryBudget) -> bool:
    return budget.can_spend


def test_budget_is_spent_and_refilled_by_successes() -> None:
    """Each re-send costs one unit; ten successes earn one back, never above the capacity."""
    budget = RetryBudget(2)
    budget.spend()
    budget.spend()
    assert not spendable(budget)
    for _ in range(9):
        budget.refund()
    assert not spendable(budget)
    budget.refund()
    assert spendable(budget)
    for _ in range(100):
        budget.refund()
    assert repr(budget) == "<RetryBudget 2.0/2>"


@pytest.mark.parametrize(
    "changes",
    [
        {"max_resends": -1},
        {"max_resends": 1.5},
        {"backoff_initial": -0.1},
        {"backoff_max": math.inf},
        {"max_retry_after": math.nan},
    ],
)
def test_bad_retry_policy_is_a_configuration_error(changes: dict[str, float]) -> None:
    """A bad RetryPolicy value raises the SDK's ConfigurationError (also a ValueError)."""
    with pytest.raises(ConfigurationError):
        RetryPolicy(**changes)  # type: ignore[arg-type]


def test_for_tests_waits_for_nothing() -> None:
    """The test mode re-sends as the default policy does, with every wait zero."""
    fast = RetryPolicy.for_tests()
    assert fast.max_resends == RetryPolicy().max_resends
    assert step(NotSentError("x"), draw=1.0) != Resend(0.0, spends_budget=True)
    assert decide(
        NotSentError("x"),
        resends=0,
        token_refreshed=False,
        budget_left=True,
        policy=fast,
        draw=1.0,
    ) == Resend(0.0, spends_budget=True)


def test_test_mode_keeps_every_rule_and_waits_for_nothing() -> None:
    """for_tests() refuses what the default refuses, and honours a Retry-After at once."""
    fast = RetryPolicy.for_tests()

    def fast_step(happened: CCMessagingError) -> Resend | CCMessagingError:
        return decide(
            happened, resends=0, token_refreshed=False, budget_left=True, policy=fast, draw=1.0
        )

    assert fast_step(rejected(429, 5.0)) == Resend(0.0, spends_budget=True)
    too_long = rejected(429, 31.0)
    assert fast_step(too_long) is too_long
    lost = ConnectionLostError("x")
    assert fast_step(lost) is lost
