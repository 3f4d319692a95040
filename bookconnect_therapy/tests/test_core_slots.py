from datetime import datetime, timedelta, timezone
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from odoo.tests import BaseCase, tagged

from ..core import InvalidSegment, InvalidSlotRules, align_up, free_slots, subtract, union

DAY0 = datetime(2026, 11, 30)  # a Monday, midnight


def at(hours, minutes=0, day=0):
    return DAY0 + timedelta(days=day, hours=hours, minutes=minutes)


def minutes(value):
    return timedelta(minutes=value)


@tagged("bookconnect", "bookconnect_core")
class TestSlotExamples(BaseCase):
    def test_a_free_day_is_cut_into_slots_a_buffer_apart(self):
        slots = free_slots([(at(9), at(13))], [], minutes(50), buffer=minutes(10))
        self.assertEqual(
            slots,
            [(at(9), at(9, 50)), (at(10), at(10, 50)), (at(11), at(11, 50)), (at(12), at(12, 50))],
        )

    def test_busy_time_and_its_buffer_are_left_out(self):
        # A session 11:00-11:50 with a 10-minute buffer blocks 10:50-12:00.
        slots = free_slots(
            [(at(9), at(14))], [(at(11), at(11, 50))], minutes(50), buffer=minutes(10)
        )
        self.assertEqual([start for start, _end in slots], [at(9), at(10), at(12), at(13)])
        # 10:00-10:50 ends right where the buffer starts: allowed, touching is no overlap.
        self.assertIn((at(10), at(10, 50)), slots)

    def test_starts_are_rounded_up_to_the_grid(self):
        # Busy until 9:37 plus 10 minutes of buffer: the next quarter hour is 10:00.
        slots = free_slots([(at(9), at(12))], [(at(8), at(9, 37))], minutes(50), buffer=minutes(10))
        self.assertEqual(slots[0], (at(10), at(10, 50)))
        half_hours = free_slots([(at(9, 5), at(11))], [], minutes(20), align=minutes(30))
        self.assertEqual([s for s, _e in half_hours], [at(9, 30), at(10), at(10, 30)])

    def test_working_hours_with_a_lunch_break(self):
        working = [(at(13), at(17)), (at(8), at(12))]  # any order
        slots = free_slots(working, [], minutes(60))
        self.assertEqual(len(slots), 8)
        self.assertNotIn(at(12), [s for s, _e in slots])

    def test_slot_that_does_not_fit_before_the_end_of_the_day_is_not_offered(self):
        slots = free_slots([(at(9), at(10, 30))], [], minutes(50), buffer=minutes(10))
        self.assertEqual(slots, [(at(9), at(9, 50))])

    def test_bounds(self):
        working = [(at(9), at(17)), (at(9, day=1), at(17, day=1))]
        slots = free_slots(
            working,
            [],
            minutes(60),
            not_before=at(15, 10),
            not_after=at(11, day=1),
        )
        self.assertEqual([s for s, _e in slots], [at(15, 15), at(9, day=1), at(10, day=1)])

    def test_buffer_is_kept_across_a_short_break_in_the_working_hours(self):
        # 9:00-10:00 ends 5 minutes before the next working block: with a 15-minute buffer
        # the next slot cannot start at 10:05.
        slots = free_slots(
            [(at(9), at(10)), (at(10, 5), at(12))], [], minutes(60), buffer=minutes(15)
        )
        self.assertEqual([s for s, _e in slots], [at(9), at(10, 15)])

    def test_nothing_when_fully_busy_or_no_working_hours(self):
        self.assertEqual(free_slots([], [], minutes(50)), [])
        self.assertEqual(free_slots([(at(9), at(17))], [(at(8), at(18))], minutes(50)), [])

    def test_zero_length_busy_event_still_takes_its_buffer(self):
        slots = free_slots([(at(9), at(11))], [(at(10), at(10))], minutes(30), buffer=minutes(15))
        # Blocked 9:45-10:15.
        self.assertEqual([s for s, _e in slots], [at(9), at(10, 15)])

    def test_timezone_aware_datetimes(self):
        utc = timezone.utc
        slots = free_slots(
            [(at(9).replace(tzinfo=utc), at(11).replace(tzinfo=utc))], [], minutes(60)
        )
        self.assertEqual(len(slots), 2)
        self.assertEqual(slots[0][0].tzinfo, utc)

    def test_invalid_rules(self):
        for kwargs in (
            {"length": minutes(0)},
            {"length": 50},
            {"length": minutes(50), "buffer": minutes(-1)},
            {"length": minutes(50), "align": minutes(7)},
            {"length": minutes(50), "align": minutes(0)},
        ):
            with self.subTest(kwargs=kwargs), self.assertRaises(InvalidSlotRules):
                free_slots([(at(9), at(17))], [], **kwargs)
        with self.assertRaises(InvalidSegment):
            free_slots([(at(17), at(9))], [], minutes(50))

    def test_subtract(self):
        self.assertEqual(
            subtract([(at(9), at(17))], [(at(8), at(10)), (at(12), at(13)), (at(16), at(18))]),
            [(at(10), at(12)), (at(13), at(16))],
        )
        self.assertEqual(subtract([(at(9), at(10))], []), [(at(9), at(10))])
        self.assertEqual(subtract([(at(9), at(10))], [(at(9), at(10))]), [])
        self.assertEqual(
            subtract([(at(9), at(10)), (at(11), at(12))], [(at(9, 30), at(11, 30))]),
            [(at(9), at(9, 30)), (at(11, 30), at(12))],
        )

    def test_align_up(self):
        self.assertEqual(align_up(at(9), minutes(15)), at(9))
        self.assertEqual(align_up(at(9, 1), minutes(15)), at(9, 15))
        self.assertEqual(align_up(at(23, 59), minutes(15)), at(0, day=1))


# Property tests on a two-day window at minute resolution.
WINDOW = 2 * 24 * 60
offsets = st.integers(min_value=0, max_value=WINDOW)
intervals = st.lists(
    st.tuples(offsets, offsets).map(lambda p: (at(0, min(p)), at(0, max(p)))), max_size=8
)
rules = st.fixed_dictionaries(
    {
        "length": st.integers(min_value=5, max_value=180).map(minutes),
        "buffer": st.integers(min_value=0, max_value=45).map(minutes),
        "align": st.sampled_from([5, 10, 15, 20, 30, 60]).map(minutes),
    }
)
bounds = st.tuples(
    st.one_of(st.none(), offsets.map(lambda m: at(0, m))),
    st.one_of(st.none(), offsets.map(lambda m: at(0, m))),
)


def _overlaps(a_start, a_end, b_start, b_end):
    return a_start < b_end and b_start < a_end


@tagged("bookconnect", "bookconnect_core")
class TestSlotProperties(BaseCase):
    @settings(max_examples=300, deadline=None)
    @given(intervals, intervals, rules, bounds)
    def test_slot_invariants(self, working, busy, rule, bound):
        not_before, not_after = bound
        slots = free_slots(working, busy, not_before=not_before, not_after=not_after, **rule)
        length, buffer, align = rule["length"], rule["buffer"], rule["align"]
        merged = union(working)
        for start, end in slots:
            # The right length, on the grid.
            self.assertEqual(end - start, length)
            self.assertEqual((start - DAY0) % align, timedelta(0))
            # Within working hours (one working interval holds the whole slot).
            self.assertTrue(any(ws <= start and end <= we for ws, we in merged), (start, end))
            # Within the bounds.
            if not_before is not None:
                self.assertGreaterEqual(start, not_before)
            if not_after is not None:
                self.assertLessEqual(end, not_after)
            # Never over a busy interval widened by the buffer.
            for bs, be in busy:
                if be - bs + 2 * buffer > timedelta(0):
                    self.assertFalse(_overlaps(start, end, bs - buffer, be + buffer))
        # Sorted, and any two slots a buffer apart (booking all of them keeps the buffer).
        for (_s1, e1), (s2, _e2) in pairwise(slots):
            self.assertGreaterEqual(s2 - e1, buffer)

    @settings(max_examples=150, deadline=None)
    @given(intervals, intervals, rules)
    def test_no_further_slot_would_fit(self, working, busy, rule):
        """Maximal: no grid start left out could hold one more slot under the same rules."""
        length, buffer, align = rule["length"], rule["buffer"], rule["align"]
        slots = free_slots(working, busy, **rule)
        merged = union(working)
        step = int(align.total_seconds() // 60)
        for offset in range(0, WINDOW + 1, step):
            start = at(0, offset)
            end = start + length
            fits = any(ws <= start and end <= we for ws, we in merged)
            clear = all(
                not _overlaps(start, end, bs - buffer, be + buffer)
                for bs, be in busy
                if be - bs + 2 * buffer > timedelta(0)
            )
            apart = all(not _overlaps(start, end, s - buffer, e + buffer) for s, e in slots)
            self.assertFalse(fits and clear and apart, f"{start} was left out: {slots}")

    @settings(max_examples=100, deadline=None)
    @given(intervals, intervals, rules)
    def test_more_busy_time_never_adds_slots_inside_it(self, working, busy, rule):
        """Adding busy time never offers a slot over it, nor slots where none fitted before."""
        before = set(free_slots(working, busy, **rule))
        extra = (at(20), at(21))
        after = set(free_slots(working, [*busy, extra], **rule))
        for start, end in after:
            self.assertFalse(
                _overlaps(start, end, extra[0] - rule["buffer"], extra[1] + rule["buffer"])
            )
        if not before:
            self.assertEqual(after, set())
