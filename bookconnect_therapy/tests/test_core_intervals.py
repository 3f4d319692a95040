from datetime import datetime, timedelta
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from odoo.tests import BaseCase, tagged

from ..core import InvalidSegment, billable_seconds, intersect, total_seconds, union

T0 = datetime(2026, 11, 27, 10, 0, 0)


def at(minutes, seconds=0):
    return T0 + timedelta(minutes=minutes, seconds=seconds)


def seg(a, b):
    return (at(a), at(b) if b is not None else None)


# Segments within two hours, second resolution; ends may be missing.
offsets = st.integers(min_value=0, max_value=7200)
closed_segments = st.lists(
    st.tuples(offsets, offsets).map(
        lambda p: (T0 + timedelta(seconds=min(p)), T0 + timedelta(seconds=max(p)))
    ),
    max_size=12,
)
any_segments = st.lists(
    st.tuples(offsets, st.one_of(st.none(), offsets)).map(
        lambda p: (
            T0 + timedelta(seconds=p[0] if p[1] is None else min(p)),
            None if p[1] is None else T0 + timedelta(seconds=max(p)),
        )
    ),
    max_size=12,
)
NOW = T0 + timedelta(seconds=7200)


@tagged("bookconnect", "bookconnect_core")
class TestIntervalExamples(BaseCase):
    def test_union_merges_overlaps_duplicates_and_touching(self):
        segments = [seg(10, 20), seg(0, 5), seg(15, 25), seg(0, 5), seg(25, 30), seg(40, 40)]
        self.assertEqual(union(segments), [seg(0, 5), seg(10, 30)])

    def test_client_reconnects_twice(self):
        therapist = [seg(0, 50)]
        client = [seg(2, 10), seg(11, 30), seg(32, 55)]
        # 8 + 19 + 18 minutes together
        self.assertEqual(billable_seconds(therapist, client), 45 * 60)

    def test_only_time_together_counts(self):
        self.assertEqual(billable_seconds([seg(0, 10)], [seg(20, 30)]), 0)
        self.assertEqual(billable_seconds([seg(0, 30)], []), 0)
        self.assertEqual(billable_seconds([seg(0, 30)], [seg(5, 6)]), 60)

    def test_missing_end_is_closed_by_now(self):
        therapist = [seg(0, None)]
        client = [seg(5, 25)]
        self.assertEqual(billable_seconds(therapist, client, now=at(20)), 15 * 60)
        # an open segment starting after the bound has no length
        self.assertEqual(union([seg(30, None)], now=at(20)), [])

    def test_missing_end_without_bound_is_an_error(self):
        with self.assertRaisesRegex(InvalidSegment, "no end"):
            union([seg(0, None)])

    def test_end_before_start_is_an_error(self):
        with self.assertRaisesRegex(InvalidSegment, "before it starts"):
            union([(at(10), at(5))])

    def test_malformed_segments_are_errors(self):
        for bad in [(at(1),), "ab", 5, (None, at(2)), (at(1), 3)]:
            with self.subTest(bad=bad), self.assertRaises(InvalidSegment):
                union([bad], now=at(10))

    def test_intersect_walks_both_lists(self):
        left = union([seg(0, 10), seg(20, 30), seg(40, 50)])
        right = union([seg(5, 25), seg(45, 60)])
        self.assertEqual(intersect(left, right), [seg(5, 10), seg(20, 25), seg(45, 50)])
        self.assertEqual(total_seconds(intersect(left, right)), 15 * 60)

    def test_sub_second_remainders_are_dropped_once(self):
        self.assertEqual(total_seconds([(at(0), at(0, 0) + timedelta(seconds=1.6))]), 1)


@tagged("bookconnect", "bookconnect_core")
class TestIntervalProperties(BaseCase):
    @settings(max_examples=300, deadline=None, database=None)
    @given(closed_segments)
    def test_union_is_sorted_disjoint_and_non_empty(self, segments):
        merged = union(segments)
        for start, end in merged:
            self.assertLess(start, end)
        for (_s1, e1), (s2, _e2) in pairwise(merged):
            self.assertLess(e1, s2)

    @settings(max_examples=300, deadline=None, database=None)
    @given(closed_segments, st.randoms())
    def test_union_ignores_order_and_duplicates(self, segments, rnd):
        shuffled = segments + segments[: len(segments) // 2]
        rnd.shuffle(shuffled)
        self.assertEqual(union(shuffled), union(segments))

    @settings(max_examples=300, deadline=None, database=None)
    @given(any_segments, any_segments)
    def test_intersection_never_exceeds_either_total(self, therapist, client):
        together = billable_seconds(therapist, client, now=NOW)
        self.assertGreaterEqual(together, 0)
        self.assertLessEqual(together, total_seconds(union(therapist, NOW)))
        self.assertLessEqual(together, total_seconds(union(client, NOW)))

    @settings(max_examples=300, deadline=None, database=None)
    @given(any_segments, any_segments)
    def test_intersection_is_symmetric(self, therapist, client):
        self.assertEqual(
            billable_seconds(therapist, client, now=NOW),
            billable_seconds(client, therapist, now=NOW),
        )

    @settings(max_examples=200, deadline=None, database=None)
    @given(closed_segments, closed_segments)
    def test_intersection_matches_second_by_second_count(self, therapist, client):
        def covered(segments):
            return {
                s
                for start, end in segments
                for s in range(int((start - T0).total_seconds()), int((end - T0).total_seconds()))
            }

        expected = len(covered(therapist) & covered(client))
        self.assertEqual(billable_seconds(therapist, client), expected)

    @settings(max_examples=200, deadline=None, database=None)
    @given(closed_segments)
    def test_self_intersection_is_the_union(self, segments):
        merged = union(segments)
        self.assertEqual(intersect(merged, merged), merged)
