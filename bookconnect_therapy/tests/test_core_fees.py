from datetime import datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from odoo.tests import BaseCase, tagged

from ..core import InvalidRules, cancellation_outcome, fee_amount, is_no_show

D = Decimal
START = datetime(2026, 11, 29, 15, 0)
FEE = D("20")

moments = st.integers(min_value=-96 * 60, max_value=120).map(
    lambda minutes: START + timedelta(minutes=minutes)
)
windows = st.integers(0, 72)
graces = st.integers(0, 120)


@tagged("bookconnect", "bookconnect_core")
class TestFees(BaseCase):
    def test_fee_kinds(self):
        cent = D("0.01")
        self.assertEqual(fee_amount("fixed", "20", 0, "90", cent), D("20.00"))
        self.assertEqual(fee_amount("percent", 0, "50", "90", cent), D("45.00"))
        self.assertEqual(fee_amount("percent", 0, "33.333", "10", cent), D("3.33"))
        self.assertEqual(fee_amount("none", "20", "50", "90", cent), D("0.00"))
        self.assertEqual(fee_amount("percent", 0, "50", "1001", D("1")), D(501))

    def test_fee_nonsense(self):
        cent = D("0.01")
        for args in [
            ("fixed", "-1", 0, "90"),
            ("percent", 0, "101", "90"),
            ("percent", 0, "-5", "90"),
            ("half", 0, 0, "90"),
            ("percent", 0, "50", "-90"),
        ]:
            with self.subTest(args=args), self.assertRaises(InvalidRules):
                fee_amount(*args, cent)

    def test_no_show(self):
        self.assertFalse(is_no_show(START, START + timedelta(minutes=14), 15, False))
        self.assertTrue(is_no_show(START, START + timedelta(minutes=15), 15, False))
        self.assertFalse(is_no_show(START, START + timedelta(hours=2), 15, True))
        with self.assertRaises(InvalidRules):
            is_no_show(START, START, -1, False)


@tagged("bookconnect", "bookconnect_core")
class TestCancellationOutcome(BaseCase):
    def test_the_window_edge_is_free_a_second_later_is_late(self):
        edge = START - timedelta(hours=24)
        free = cancellation_outcome(START, edge, 24, FEE)
        self.assertEqual((free.late, free.fee, free.free_until), (False, D(0), edge))
        late = cancellation_outcome(START, edge + timedelta(seconds=1), 24, FEE)
        self.assertEqual((late.late, late.fee), (True, FEE))
        self.assertTrue(cancellation_outcome(START, START + timedelta(minutes=5), 24, FEE).late)
        no_window = cancellation_outcome(START, START - timedelta(minutes=1), 0, FEE)
        self.assertFalse(no_window.late)

    def test_same_day_booking_without_grace_costs_the_fee_at_once(self):
        booked = START - timedelta(hours=3)
        outcome = cancellation_outcome(START, booked, 24, FEE, booked_at=booked)
        self.assertTrue(outcome.late)
        self.assertEqual(outcome.fee, FEE)
        self.assertLess(outcome.free_until, booked, "free until a time already past")
        self.assertFalse(outcome.by_grace)

    def test_booking_grace_keeps_cancelling_free_for_a_while(self):
        booked = START - timedelta(hours=3)
        ten_later = booked + timedelta(minutes=10)
        free = cancellation_outcome(START, ten_later, 24, FEE, booked_at=booked, grace_minutes=10)
        self.assertEqual((free.late, free.fee, free.free_until), (False, D(0), ten_later))
        self.assertTrue(free.by_grace)
        late = cancellation_outcome(
            START, ten_later + timedelta(seconds=1), 24, FEE, booked_at=booked, grace_minutes=10
        )
        self.assertEqual((late.late, late.fee), (True, FEE))

    def test_the_grace_never_reaches_past_the_start(self):
        booked = START - timedelta(minutes=5)
        outcome = cancellation_outcome(START, START, 24, FEE, booked_at=booked, grace_minutes=30)
        self.assertEqual((outcome.late, outcome.free_until), (False, START))
        after = cancellation_outcome(
            START, START + timedelta(minutes=1), 24, FEE, booked_at=booked, grace_minutes=30
        )
        self.assertTrue(after.late)

    def test_a_grace_ending_before_the_window_changes_nothing(self):
        booked = START - timedelta(days=5)
        outcome = cancellation_outcome(
            START, START - timedelta(hours=23), 24, FEE, booked_at=booked, grace_minutes=10
        )
        self.assertEqual((outcome.late, outcome.by_grace), (True, False))
        self.assertEqual(outcome.free_until, START - timedelta(hours=24))

    def test_nonsense(self):
        for kwargs in [
            {"free_window_hours": -1},
            {"late_fee": "-5"},
            {"late_fee": "twenty"},
            {"grace_minutes": -1},
            {"grace_minutes": 2.5},
            {"grace_minutes": True},
        ]:
            values = {
                "start": START,
                "cancelled_at": START,
                "free_window_hours": 24,
                "late_fee": FEE,
                "booked_at": START - timedelta(hours=1),
                **kwargs,
            }
            with self.subTest(kwargs=kwargs), self.assertRaises(InvalidRules):
                cancellation_outcome(**values)

    @settings(max_examples=300, deadline=None, database=None)
    @given(windows, st.integers(-5000, 5000))
    def test_late_exactly_after_the_edge_without_grace(self, hours, offset_minutes):
        cancelled = START - timedelta(hours=hours) + timedelta(minutes=offset_minutes)
        outcome = cancellation_outcome(START, cancelled, hours, FEE)
        self.assertEqual(outcome.late, offset_minutes > 0)

    @settings(max_examples=400, deadline=None, database=None)
    @given(windows, graces, moments, st.integers(0, 3 * 24 * 60))
    def test_properties_with_a_booking_grace(self, hours, grace, booked, delay):
        cancelled = booked + timedelta(minutes=delay)
        outcome = cancellation_outcome(
            START, cancelled, hours, FEE, booked_at=booked, grace_minutes=grace
        )
        edge = START - timedelta(hours=hours)
        # Late exactly after the moment it says it is free until, and costs the fee then.
        self.assertEqual(outcome.late, cancelled > outcome.free_until)
        self.assertEqual(outcome.fee, FEE if outcome.late else 0)
        # Free until the window's edge at least, and the grace never reaches past the start.
        self.assertGreaterEqual(outcome.free_until, edge)
        self.assertLessEqual(outcome.free_until, max(edge, START))
        # Within the grace of a booking and before the start, cancelling is always free.
        if grace and delay <= grace and cancelled <= START:
            self.assertFalse(outcome.late)
        # The grace only ever makes cancelling cheaper.
        without = cancellation_outcome(START, cancelled, hours, FEE)
        self.assertLessEqual(outcome.fee, without.fee)
        no_grace = cancellation_outcome(
            START, cancelled, hours, FEE, booked_at=booked, grace_minutes=0
        )
        self.assertEqual(without, no_grace)
        # After the start, cancelling is always late.
        if cancelled > START:
            self.assertTrue(outcome.late)

    @settings(max_examples=200, deadline=None, database=None)
    @given(windows, graces, moments, st.integers(0, 600), st.integers(1, 600))
    def test_once_late_always_late(self, hours, grace, booked, delay, more):
        first = booked + timedelta(minutes=delay)
        outcome = cancellation_outcome(
            START, first, hours, FEE, booked_at=booked, grace_minutes=grace
        )
        later = cancellation_outcome(
            START,
            first + timedelta(minutes=more),
            hours,
            FEE,
            booked_at=booked,
            grace_minutes=grace,
        )
        self.assertEqual(outcome.free_until, later.free_until)
        self.assertTrue(later.late or not outcome.late)
