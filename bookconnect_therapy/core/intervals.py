"""Interval arithmetic on connection segments.

A segment is a ``(start, end)`` pair of datetimes; ``end`` may be ``None`` when the "left" event
never came. Billable time is the
time when the therapist AND the client were connected at once: the intersection of the union of
each participant's segments. The results do not depend on the order of the segments, on
duplicates or on overlaps.
"""

from datetime import datetime, timedelta


class InvalidSegment(ValueError):
    """A segment that cannot describe a connection (end before start, open without a bound)."""


def _closed(segments, now):
    """Yield the segments as closed ``(start, end)`` pairs, validating each one.

    An open segment (``end is None``) is closed at ``now``; a segment that starts after ``now``
    then has no duration and is dropped.
    """
    for segment in segments:
        try:
            start, end = segment
        except (TypeError, ValueError) as exc:
            raise InvalidSegment(f"a segment is a (start, end) pair, got {segment!r}") from exc
        if not isinstance(start, datetime):
            raise InvalidSegment(f"a segment starts at a datetime, got {start!r}")
        if end is not None and not isinstance(end, datetime):
            raise InvalidSegment(f"a segment ends at a datetime or None, got {end!r}")
        if end is None:
            if now is None:
                raise InvalidSegment(
                    f"the segment starting at {start} has no end and no 'now' bound was given"
                )
            end = max(start, now)
        try:
            backwards = end < start
        except TypeError as exc:
            raise InvalidSegment(f"cannot compare start {start!r} with end {end!r}") from exc
        if backwards:
            raise InvalidSegment(f"the segment ends ({end}) before it starts ({start})")
        yield start, end


def union(segments, now=None):
    """Return the union of ``segments`` as sorted, disjoint, non-empty ``(start, end)`` pairs.

    Touching segments (one ends when the next starts) merge into one. Zero-length segments vanish.

    :param segments: iterable of ``(start, end)`` pairs; ``end`` may be ``None``.
    :param now: the bound closing open segments (e.g. the last heartbeat).
    :return: list of ``(start, end)`` tuples.
    :raise InvalidSegment: on a malformed segment, an end before its start, or an open segment
        without ``now``.
    """
    merged = []
    for start, end in sorted(_closed(segments, now)):
        if start == end:
            continue
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def intersect(left, right):
    """Return the intersection of two unions (as returned by :func:`union`).

    :return: sorted, disjoint, non-empty ``(start, end)`` pairs present in both inputs.
    """
    result = []
    i = j = 0
    while i < len(left) and j < len(right):
        start = max(left[i][0], right[j][0])
        end = min(left[i][1], right[j][1])
        if start < end:
            result.append((start, end))
        if left[i][1] <= right[j][1]:
            i += 1
        else:
            j += 1
    return result


def total_seconds(intervals):
    """Return the total length of disjoint intervals in whole seconds (fractions dropped)."""
    total = sum((end - start for start, end in intervals), timedelta())
    return int(total.total_seconds())


def billable_seconds(therapist_segments, client_segments, now=None):
    """Return the seconds during which therapist and client were both connected.

    :param therapist_segments: the therapist's ``(start, end)`` segments, any order.
    :param client_segments: the client's ``(start, end)`` segments, any order.
    :param now: bound for segments whose end is missing.
    :return: int, seconds of overlap (never more than either participant's own total).
    :raise InvalidSegment: see :func:`union`.
    """
    return total_seconds(intersect(union(therapist_segments, now), union(client_segments, now)))
