"""What cancelling or missing a session costs.

Cancelling at or before ``start - free window`` is free; later (including after the start) it is
a late cancellation. A policy may also leave a short grace after booking: a session booked
inside the window (or just before it) can still be cancelled free for that many minutes after
it was booked, never past its start. A client who has not joined ``delay`` minutes after the
start is a no-show. Fees are either a fixed amount or a percentage of the session's price.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from .pricing import InvalidRules, round_money, to_decimal

FEE_KINDS = ("none", "fixed", "percent")
HUNDRED = Decimal(100)


@dataclass(frozen=True)
class CancellationOutcome:
    """What cancelling at a given moment costs.

    :ivar late: the free time had passed: it is a late cancellation.
    :ivar fee: what it costs (``0`` when free).
    :ivar free_until: the last moment cancelling is free (the window's edge, or the end of
        the booking grace when that is later). It may be before the booking: a session booked
        inside the window with no grace costs the fee from the moment it is booked.
    :ivar by_grace: cancelling is free until ``free_until`` only thanks to the booking grace.
    """

    late: bool
    fee: Decimal
    free_until: datetime
    by_grace: bool = False


def fee_amount(kind, fixed, percent, session_price, rounding):
    """Return the fee for a late cancellation or a no-show.

    :param kind: ``none``, ``fixed`` (``fixed`` is the amount) or ``percent`` (of
        ``session_price``, 0 to 100).
    :param rounding: the currency's smallest step.
    :return: Decimal amount, never negative.
    :raise InvalidRules: on an unknown kind, a negative amount or a percentage outside 0-100.
    """
    if kind not in FEE_KINDS:
        raise InvalidRules(f"unknown fee kind {kind!r}; expected one of {FEE_KINDS}")
    if kind == "none":
        return round_money(0, rounding)
    if kind == "fixed":
        fixed = to_decimal(fixed, "fixed fee")
        if fixed < 0:
            raise InvalidRules(f"a fee cannot be negative ({fixed})")
        return round_money(fixed, rounding)
    percent = to_decimal(percent, "fee percentage")
    if not 0 <= percent <= 100:
        raise InvalidRules(f"a fee percentage is between 0 and 100, got {percent}")
    session_price = to_decimal(session_price, "session price")
    if session_price < 0:
        raise InvalidRules(f"the session price cannot be negative ({session_price})")
    return round_money(session_price * percent / HUNDRED, rounding)


def cancellation_outcome(
    start, cancelled_at, free_window_hours, late_fee, *, booked_at=None, grace_minutes=0
):
    """Decide whether a cancellation is free or late, and what it costs.

    Cancelling is free until the later of two moments: the window's edge (``start`` less
    ``free_window_hours``) and, when ``booked_at`` is given, ``grace_minutes`` after the
    booking, that grace never reaching past ``start``. Cancelling exactly at that moment is
    free.

    :param start: when the session starts.
    :param cancelled_at: when the cancellation happens.
    :param free_window_hours: hours before the start until which cancelling is free (>= 0).
    :param late_fee: the fee a late cancellation costs (see :func:`fee_amount`).
    :param booked_at: when the session was booked (``None``: no booking grace).
    :param grace_minutes: whole minutes after booking in which cancelling stays free (>= 0).
    :return: :class:`CancellationOutcome`.
    :raise InvalidRules: on a negative window, fee or grace, or a grace that is not whole minutes.
    """
    hours = to_decimal(free_window_hours, "free-cancellation window")
    if hours < 0:
        raise InvalidRules(f"the free-cancellation window cannot be negative ({hours} h)")
    if isinstance(grace_minutes, bool) or not isinstance(grace_minutes, int) or grace_minutes < 0:
        raise InvalidRules(
            f"the cancellation grace must be whole minutes >= 0, got {grace_minutes!r}"
        )
    fee = to_decimal(late_fee, "late-cancellation fee")
    if fee < 0:
        raise InvalidRules(f"a fee cannot be negative ({fee})")
    window_edge = start - timedelta(seconds=int(hours * 3600))
    free_until, by_grace = window_edge, False
    if booked_at is not None and grace_minutes:
        grace_end = min(booked_at + timedelta(minutes=grace_minutes), start)
        if grace_end > window_edge:
            free_until, by_grace = grace_end, True
    late = cancelled_at > free_until
    return CancellationOutcome(
        late=late, fee=fee if late else Decimal(0), free_until=free_until, by_grace=by_grace
    )


def is_no_show(start, now, delay_minutes, client_joined):
    """Return whether a client who has not joined counts as a no-show at ``now``.

    :param delay_minutes: minutes after the start the client may still join (>= 0).
    :param client_joined: whether the client was ever connected.
    """
    if isinstance(delay_minutes, bool) or not isinstance(delay_minutes, int) or delay_minutes < 0:
        raise InvalidRules(f"the no-show delay must be whole minutes >= 0, got {delay_minutes!r}")
    return not client_joined and now >= start + timedelta(minutes=delay_minutes)
