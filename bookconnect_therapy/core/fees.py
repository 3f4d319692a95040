"""What cancelling or missing a session costs.

Cancelling at or before ``start - free window`` is free; later (including after the start) it is
a late cancellation. A client who has not joined ``delay`` minutes after the start is a no-show.
Fees are either a fixed amount or a percentage of the session's price.
"""

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from .pricing import InvalidRules, round_money, to_decimal

FEE_KINDS = ("none", "fixed", "percent")
HUNDRED = Decimal(100)


@dataclass(frozen=True)
class CancellationOutcome:
    """``late`` tells whether the free window had passed; ``fee`` is what it costs."""

    late: bool
    fee: Decimal
    free_until: object


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


def cancellation_outcome(start, cancelled_at, free_window_hours, late_fee):
    """Decide whether a cancellation is free or late.

    :param start: when the session starts.
    :param cancelled_at: when the cancellation happens.
    :param free_window_hours: hours before the start until which cancelling is free (>= 0).
    :param late_fee: the fee a late cancellation costs (see :func:`fee_amount`).
    :return: :class:`CancellationOutcome`; cancelling exactly at the window's edge is free.
    """
    hours = to_decimal(free_window_hours, "free-cancellation window")
    if hours < 0:
        raise InvalidRules(f"the free-cancellation window cannot be negative ({hours} h)")
    free_until = start - timedelta(seconds=int(hours * 3600))
    late = cancelled_at > free_until
    fee = to_decimal(late_fee, "late-cancellation fee") if late else Decimal(0)
    return CancellationOutcome(late=late, fee=fee, free_until=free_until)


def is_no_show(start, now, delay_minutes, client_joined):
    """Return whether a client who has not joined counts as a no-show at ``now``.

    :param delay_minutes: minutes after the start the client may still join (>= 0).
    :param client_joined: whether the client was ever connected.
    """
    if isinstance(delay_minutes, bool) or not isinstance(delay_minutes, int) or delay_minutes < 0:
        raise InvalidRules(f"the no-show delay must be whole minutes >= 0, got {delay_minutes!r}")
    return not client_joined and now >= start + timedelta(minutes=delay_minutes)
