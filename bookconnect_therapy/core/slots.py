"""Bookable slots: a therapist's working time minus busy time, cut into slots.

Every busy interval is widened by a buffer on both sides (the therapist's breather between two
sessions), and consecutive slots are kept a buffer apart as well, so that booking every slot
offered still leaves the buffer between any two sessions. Slot starts fall on a grid (multiples
of ``align`` since midnight: 10:00, 10:15, ...) so that clients see round times. Within those
rules the slots are taken as early as possible, which offers the most slots.

All datetimes are of one kind (naive UTC, as Odoo stores them, or all timezone-aware).
"""

from datetime import timedelta

from .intervals import union

DAY = timedelta(days=1)


class InvalidSlotRules(ValueError):
    """Slot rules that cannot produce slots (no length, negative buffer, odd grid)."""


def subtract(intervals, removals):
    """Return ``intervals`` minus ``removals``, both as returned by :func:`union`.

    :return: sorted, disjoint, non-empty ``(start, end)`` pairs.
    """
    result = []
    j = 0
    for start, end in intervals:
        cursor = start
        while j < len(removals) and removals[j][1] <= cursor:
            j += 1
        k = j
        while k < len(removals) and removals[k][0] < end:
            cut_start, cut_end = removals[k]
            if cut_start > cursor:
                result.append((cursor, cut_start))
            cursor = max(cursor, cut_end)
            if cursor >= end:
                break
            k += 1
        if cursor < end:
            result.append((cursor, end))
    return result


def align_up(moment, align):
    """Return the first multiple of ``align`` since ``moment``'s midnight at or after it."""
    midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    steps = -((moment - midnight) // -align)  # ceiling division of timedeltas
    return midnight + steps * align


def _check_rules(length, buffer, align):
    if not isinstance(length, timedelta) or length <= timedelta(0):
        raise InvalidSlotRules(f"a slot lasts a positive time, got {length!r}")
    if not isinstance(buffer, timedelta) or buffer < timedelta(0):
        raise InvalidSlotRules(f"the buffer is a time of zero or more, got {buffer!r}")
    if not isinstance(align, timedelta) or align <= timedelta(0) or DAY % align:
        raise InvalidSlotRules(f"the slot grid must divide a day evenly, got {align!r}")


def blocked_intervals(busy, buffer=timedelta(0)):
    """Return the union of the busy intervals widened by ``buffer`` on both sides."""
    return union((start - buffer, end + buffer) for start, end in busy)


def free_slots(
    working,
    busy,
    length,
    *,
    buffer=timedelta(0),
    align=timedelta(minutes=15),
    not_before=None,
    not_after=None,
):
    """Cut the free time into bookable slots.

    :param working: ``(start, end)`` pairs when the therapist works (any order; overlapping or
        touching pairs merge).
    :param busy: ``(start, end)`` pairs when the therapist is taken (sessions, busy events).
    :param length: ``timedelta``, how long one slot lasts.
    :param buffer: ``timedelta`` kept free before and after every busy interval and between
        consecutive slots.
    :param align: ``timedelta`` dividing a day; slot starts are multiples of it since midnight.
    :param not_before: no slot starts earlier (e.g. now plus a notice period).
    :param not_after: no slot ends later (the booking horizon).
    :return: sorted list of ``(start, end)`` slots.
    :raise InvalidSlotRules: on a non-positive length, a negative buffer or a grid that does not
        divide a day.
    :raise InvalidSegment: on a working or busy interval that ends before it starts.
    """
    _check_rules(length, buffer, align)
    free = union(working)
    if not_before is not None or not_after is not None:
        free = [
            (
                max(start, not_before) if not_before is not None else start,
                min(end, not_after) if not_after is not None else end,
            )
            for start, end in free
        ]
        free = [(start, end) for start, end in free if start < end]
    free = subtract(free, blocked_intervals(busy, buffer))
    slots = []
    earliest = None
    for start, end in free:
        moment = align_up(start if earliest is None else max(start, earliest), align)
        while moment + length <= end:
            slots.append((moment, moment + length))
            earliest = align_up(moment + length + buffer, align)
            moment = earliest
    return slots
