"""Pricing a measured duration under a billing policy, in exact decimal money.

The result is what the invoice line will say: a quantity in the invoiced unit (sessions, hours
or minutes, rounded to the quantity precision the ledger keeps) and a unit price, whose product
rounded to the currency is the amount. Computing the amount from the rounded quantity keeps the
session's amount equal to the invoice line's subtotal, to the cent.
"""

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation

MODES = ("session", "hour", "minute")
ROUNDING_METHODS = {"up": ROUND_CEILING, "half_up": ROUND_HALF_UP, "down": ROUND_FLOOR}
SIXTY = Decimal(60)


class InvalidRules(ValueError):
    """Pricing rules or inputs that make no sense (negative rate, unknown mode, ...)."""


def to_decimal(value, what="value"):
    """Return ``value`` as a finite ``Decimal``; floats go through their shortest repr.

    :raise InvalidRules: when the value is not a finite number.
    """
    if isinstance(value, bool):
        raise InvalidRules(f"{what} must be a number, got {value!r}")
    if isinstance(value, float):
        value = repr(value)
    try:
        result = Decimal(value)
    except (InvalidOperation, TypeError, ValueError) as exc:
        raise InvalidRules(f"{what} must be a number, got {value!r}") from exc
    if not result.is_finite():
        raise InvalidRules(f"{what} must be a finite number, got {value!r}")
    return result


def round_money(amount, rounding):
    """Round ``amount`` half-up to a multiple of ``rounding`` (``Decimal('0.01')``, ``1`` ...)."""
    rounding = to_decimal(rounding, "currency rounding")
    if rounding <= 0:
        raise InvalidRules(f"currency rounding must be positive, got {rounding}")
    steps = (to_decimal(amount, "amount") / rounding).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return (steps * rounding).quantize(rounding) if rounding < 1 else steps * rounding


@dataclass(frozen=True)
class PricingRules:
    """How a measured duration is billed.

    :param mode: ``session`` (flat rate), ``hour`` or ``minute``.
    :param rate: price of one unit (session, hour or minute), in the policy currency.
    :param currency_rounding: smallest money step of the currency (0.01 for EUR, 1 for JPY).
    :param grace_minutes: a call shorter than this is not billed at all.
    :param rounding_increment: billable minutes are a multiple of this many minutes.
    :param rounding_method: ``up``, ``half_up`` or ``down`` to that increment.
    :param minimum_minutes: a billed call counts at least this many minutes.
    :param maximum_minutes: a billed call counts at most this many minutes (0: no cap).
    :param quantity_digits: decimals the ledger keeps on quantities (hours are rounded to it).
    """

    mode: str
    rate: Decimal
    currency_rounding: Decimal = Decimal("0.01")
    grace_minutes: int = 0
    rounding_increment: int = 1
    rounding_method: str = "up"
    minimum_minutes: int = 0
    maximum_minutes: int = 0
    quantity_digits: int = 2

    def __post_init__(self):
        # Normalise first so that every check below works on exact values.
        object.__setattr__(self, "rate", to_decimal(self.rate, "rate"))
        object.__setattr__(
            self, "currency_rounding", to_decimal(self.currency_rounding, "currency rounding")
        )
        if self.mode not in MODES:
            raise InvalidRules(f"unknown billing mode {self.mode!r}; expected one of {MODES}")
        if self.rounding_method not in ROUNDING_METHODS:
            raise InvalidRules(
                f"unknown rounding method {self.rounding_method!r};"
                f" expected one of {tuple(ROUNDING_METHODS)}"
            )
        if self.rate < 0:
            raise InvalidRules(f"the rate cannot be negative ({self.rate})")
        if self.currency_rounding <= 0:
            raise InvalidRules("the currency rounding must be positive")
        for name in ("grace_minutes", "minimum_minutes", "maximum_minutes", "quantity_digits"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidRules(f"{name} must be a whole number of at least 0, got {value!r}")
        increment = self.rounding_increment
        if isinstance(increment, bool) or not isinstance(increment, int) or increment < 1:
            raise InvalidRules(
                f"rounding_increment must be a whole number of at least 1, got {increment!r}"
            )
        if self.maximum_minutes and self.maximum_minutes < self.minimum_minutes:
            raise InvalidRules(
                f"the maximum ({self.maximum_minutes} min) is below the minimum"
                f" ({self.minimum_minutes} min)"
            )


@dataclass(frozen=True)
class Price:
    """A priced measurement: what the invoice line says.

    ``billable_minutes`` is the measured time after grace, rounding, minimum and cap;
    ``quantity`` is in the invoiced unit; ``amount`` is ``quantity * unit_price`` rounded to the
    currency.
    """

    measured_seconds: int
    billable_minutes: int
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal

    @property
    def billable(self):
        return self.billable_minutes > 0 or self.amount > 0


def _billable_minutes(seconds, rules):
    minutes = Decimal(seconds) / SIXTY
    if minutes == 0 or minutes < rules.grace_minutes:
        return 0
    increment = Decimal(rules.rounding_increment)
    steps = (minutes / increment).quantize(
        Decimal(1), rounding=ROUNDING_METHODS[rules.rounding_method]
    )
    billable = int(steps * increment)
    billable = max(billable, rules.minimum_minutes)
    if rules.maximum_minutes:
        billable = min(billable, rules.maximum_minutes)
    return billable


def price_duration(seconds, rules):
    """Price a measured duration.

    :param int seconds: measured time both participants were connected.
    :param PricingRules rules: the policy's rules.
    :return: :class:`Price`; a call inside the grace period costs nothing.
    :raise InvalidRules: on a negative or non-integral duration.
    """
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise InvalidRules(f"the measured duration must be whole seconds, got {seconds!r}")
    if seconds < 0:
        raise InvalidRules(f"the measured duration cannot be negative ({seconds} s)")
    minutes = _billable_minutes(seconds, rules)
    if rules.mode == "session":
        quantity = Decimal(1) if minutes else Decimal(0)
    elif rules.mode == "hour":
        quantity = (Decimal(minutes) / SIXTY).quantize(
            Decimal(1).scaleb(-rules.quantity_digits), rounding=ROUND_HALF_UP
        )
    else:
        quantity = Decimal(minutes)
    amount = round_money(quantity * rules.rate, rules.currency_rounding)
    return Price(seconds, minutes, quantity, rules.rate, amount)


def minutes_affordable(balance, rules):
    """Return how many whole minutes ``balance`` pays for under per-minute or per-hour rules.

    :return: int minutes, or ``None`` when the rate is zero (time is not limited by money).
    :raise InvalidRules: for per-session rules (a balance does not buy minutes of a flat fee).
    """
    balance = to_decimal(balance, "balance")
    if rules.mode == "session":
        raise InvalidRules("a per-session price is not drawn down by the minute")
    if rules.rate == 0:
        return None
    if balance <= 0:
        return 0
    per_minute = rules.rate if rules.mode == "minute" else rules.rate / SIXTY
    return int((balance / per_minute).to_integral_value(rounding=ROUND_FLOOR))
