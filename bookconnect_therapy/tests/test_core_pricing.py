from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from odoo.tests import BaseCase, tagged

from ..core import (
    InvalidRules,
    PricingRules,
    minutes_affordable,
    price_duration,
    round_money,
)

D = Decimal


def rules(**kw):
    kw.setdefault("mode", "minute")
    kw.setdefault("rate", "0.65")
    return PricingRules(**kw)


rule_strategy = st.builds(
    PricingRules,
    mode=st.sampled_from(["session", "hour", "minute"]),
    rate=st.decimals(min_value=0, max_value=1000, places=2),
    currency_rounding=st.sampled_from([D("0.01"), D("1"), D("0.05"), D("0.001")]),
    grace_minutes=st.integers(0, 10),
    rounding_increment=st.integers(1, 30),
    rounding_method=st.sampled_from(["up", "half_up", "down"]),
    minimum_minutes=st.integers(0, 60),
    maximum_minutes=st.just(0),
)
durations = st.integers(min_value=0, max_value=4 * 3600)


@tagged("bookconnect", "bookconnect_core")
class TestPricingExamples(BaseCase):
    def test_per_minute_35_minutes(self):
        price = price_duration(35 * 60, rules())
        self.assertEqual(
            (price.billable_minutes, price.quantity, price.amount), (35, D(35), D("22.75"))
        )

    def test_partial_minute_rounds_up_by_default(self):
        self.assertEqual(price_duration(35 * 60 + 1, rules()).billable_minutes, 36)

    def test_rounding_directions_to_increment(self):
        seconds = 22 * 60 + 30  # 22.5 minutes, increment 5 -> 4.5 steps
        up = price_duration(seconds, rules(rounding_increment=5, rounding_method="up"))
        half = price_duration(seconds, rules(rounding_increment=5, rounding_method="half_up"))
        down = price_duration(seconds, rules(rounding_increment=5, rounding_method="down"))
        self.assertEqual(
            (up.billable_minutes, half.billable_minutes, down.billable_minutes), (25, 25, 20)
        )
        seconds = 22 * 60  # 4.4 steps
        half = price_duration(seconds, rules(rounding_increment=5, rounding_method="half_up"))
        self.assertEqual(half.billable_minutes, 20)

    def test_grace_period_bills_nothing_below_and_everything_from_it(self):
        r = rules(grace_minutes=5, minimum_minutes=10)
        below = price_duration(5 * 60 - 1, r)
        self.assertEqual(
            (below.billable_minutes, below.amount, below.billable), (0, D("0.00"), False)
        )
        at_edge = price_duration(5 * 60, r)
        self.assertEqual(at_edge.billable_minutes, 10)  # the minimum applies once billed
        self.assertEqual(at_edge.amount, D("6.50"))

    def test_minimum_and_cap(self):
        r = rules(minimum_minutes=20, maximum_minutes=60)
        self.assertEqual(price_duration(3 * 60, r).billable_minutes, 20)
        self.assertEqual(price_duration(90 * 60, r).billable_minutes, 60)

    def test_per_session_is_flat_once_billed(self):
        r = rules(mode="session", rate="90", grace_minutes=5)
        self.assertEqual(price_duration(50 * 60, r).amount, D("90.00"))
        self.assertEqual(price_duration(2 * 60, r).amount, D("0.00"))
        self.assertEqual(price_duration(50 * 60, r).quantity, D(1))

    def test_per_hour_quantity_matches_the_invoice_line(self):
        r = rules(mode="hour", rate="100")
        price = price_duration(35 * 60, r)
        # 35 min = 0.5833 h, kept as 0.58 h by the ledger: the amount is 0.58 x 100
        self.assertEqual((price.quantity, price.amount), (D("0.58"), D("58.00")))
        quarter = price_duration(37 * 60, rules(mode="hour", rate="100", rounding_increment=15))
        self.assertEqual(
            (quarter.billable_minutes, quarter.quantity, quarter.amount),
            (45, D("0.75"), D("75.00")),
        )

    def test_zero_decimal_currency(self):
        r = rules(rate="33", currency_rounding=D("1"))
        price = price_duration(35 * 60, r)
        self.assertEqual(price.amount, D(1155))
        yen_hour = price_duration(50 * 60, rules(mode="hour", rate="5000", currency_rounding=1))
        self.assertEqual(yen_hour.amount, D(4150))  # 0.83 h x 5000

    def test_no_float_drift(self):
        # 0.1 + 0.2 style drift would give 30.000000000000004
        self.assertEqual(price_duration(300 * 60, rules(rate=0.1)).amount, D("30.00"))
        self.assertEqual(round_money(D("2.675"), D("0.01")), D("2.68"))  # float round() gives 2.67

    def test_nonsense_is_rejected(self):
        bad = [
            {"rate": "-1"},
            {"mode": "per_fortnight"},
            {"rounding_method": "sideways"},
            {"rounding_increment": 0},
            {"grace_minutes": -1},
            {"minimum_minutes": 30, "maximum_minutes": 10},
            {"rate": "abc"},
            {"rate": float("nan")},
            {"currency_rounding": 0},
            {"minimum_minutes": 1.5},
        ]
        for kw in bad:
            with self.subTest(kw=kw), self.assertRaises(InvalidRules):
                rules(**kw)
        for seconds in (-1, 1.5, "60", None, True):
            with self.subTest(seconds=seconds), self.assertRaises(InvalidRules):
                price_duration(seconds, rules())

    def test_minutes_affordable(self):
        self.assertEqual(minutes_affordable("20", rules(rate="0.65")), 30)
        self.assertEqual(minutes_affordable("0", rules()), 0)
        self.assertEqual(minutes_affordable("-3", rules()), 0)
        self.assertIsNone(minutes_affordable("20", rules(rate="0")))
        self.assertEqual(minutes_affordable("50", rules(mode="hour", rate="60")), 50)
        with self.assertRaises(InvalidRules):
            minutes_affordable("20", rules(mode="session", rate="90"))


@tagged("bookconnect", "bookconnect_core")
class TestPricingProperties(BaseCase):
    @settings(max_examples=400, deadline=None, database=None)
    @given(rule_strategy, durations)
    def test_rounding_up_never_bills_less_than_down(self, base, seconds):
        kw = {f: getattr(base, f) for f in base.__dataclass_fields__}
        up = price_duration(seconds, PricingRules(**{**kw, "rounding_method": "up"}))
        half = price_duration(seconds, PricingRules(**{**kw, "rounding_method": "half_up"}))
        down = price_duration(seconds, PricingRules(**{**kw, "rounding_method": "down"}))
        self.assertGreaterEqual(up.billable_minutes, half.billable_minutes)
        self.assertGreaterEqual(half.billable_minutes, down.billable_minutes)
        self.assertGreaterEqual(up.amount, down.amount)

    @settings(max_examples=400, deadline=None, database=None)
    @given(rule_strategy, durations, durations)
    def test_longer_calls_never_cost_less(self, r, a, b):
        short, long_ = sorted((a, b))
        self.assertLessEqual(price_duration(short, r).amount, price_duration(long_, r).amount)

    @settings(max_examples=400, deadline=None, database=None)
    @given(rule_strategy, durations)
    def test_amount_is_quantity_times_rate_in_currency_steps(self, r, seconds):
        price = price_duration(seconds, r)
        self.assertGreaterEqual(price.amount, 0)
        self.assertEqual(price.amount % r.currency_rounding, 0)
        self.assertLessEqual(abs(price.amount - price.quantity * r.rate), r.currency_rounding / 2)
        if r.mode == "minute":
            self.assertEqual(price.quantity, price.billable_minutes)
        if price.billable_minutes:
            self.assertEqual(
                price.billable_minutes % r.rounding_increment,
                0
                if r.minimum_minutes == 0 or price.billable_minutes != r.minimum_minutes
                else price.billable_minutes % r.rounding_increment,
            )

    @settings(max_examples=300, deadline=None, database=None)
    @given(rule_strategy, durations, st.integers(60, 600))
    def test_cap_bounds_the_bill(self, r, seconds, cap):
        kw = {f: getattr(r, f) for f in r.__dataclass_fields__}
        capped = price_duration(seconds, PricingRules(**{**kw, "maximum_minutes": cap}))
        self.assertLessEqual(capped.billable_minutes, cap)
        uncapped = price_duration(seconds, r)
        self.assertLessEqual(capped.amount, uncapped.amount)

    @settings(max_examples=300, deadline=None, database=None)
    @given(rule_strategy, st.integers(0, 599))
    def test_inside_grace_is_free(self, r, seconds):
        kw = {f: getattr(r, f) for f in r.__dataclass_fields__}
        graced = PricingRules(**{**kw, "grace_minutes": 10})
        self.assertEqual(price_duration(seconds, graced).amount, 0)
        self.assertFalse(price_duration(seconds, graced).billable)
