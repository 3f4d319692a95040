"""The billing engine alone: metering (``billable_seconds``) and pricing (``price_duration``)
of one session, with 2, 20 and 200 connection segments. Pure Python, no database."""

import statistics
import timeit
from datetime import datetime, timedelta
from decimal import Decimal

SEGMENT_COUNTS = (2, 20, 200)
REPEATS = 7
T0 = datetime(2026, 11, 27, 10, 0)


def segments(count):
    """``count`` segments of a 50-minute call split between therapist and client, as
    reconnects make them: each connection drops regularly for a moment, the client's a little
    after the therapist's, and one client segment in five is a duplicate of the one before
    (a replayed event)."""
    per_role = max(count // 2, 1)
    step = timedelta(minutes=50) / per_role
    gap = min(step / 5, timedelta(seconds=30))
    shift = min(step / 10, timedelta(seconds=20))
    therapist, client = [], []
    for k in range(per_role):
        start = T0 + step * k
        therapist.append((start, start + step - gap))
        if k % 5 == 4:
            client.append(client[-1])
        else:
            client.append((start + shift, start + step - gap + shift))
    return therapist, client


def run(core):
    """Time the engine on one session per segment count.

    :param core: the addon's ``core`` package (imported inside the Odoo process).
    :return: list of dicts: segments, best and median microseconds per session, loops.
    """
    rules = core.PricingRules(
        mode="minute",
        rate=Decimal("1.60"),
        grace_minutes=3,
        rounding_increment=1,
        rounding_method="up",
    )
    results = []
    for count in SEGMENT_COUNTS:
        therapist, client = segments(count)

        def one_session(therapist=therapist, client=client):
            seconds = core.billable_seconds(therapist, client)
            return core.price_duration(seconds, rules)

        timer = timeit.Timer(one_session)
        loops, _elapsed = timer.autorange()
        times = [t / loops * 1e6 for t in timer.repeat(repeat=REPEATS, number=loops)]
        price = one_session()
        results.append(
            {
                "segments": len(therapist) + len(client),
                "best_us": round(min(times), 2),
                "median_us": round(statistics.median(times), 2),
                "loops": loops,
                "repeats": REPEATS,
                "billable_minutes": price.billable_minutes,
            }
        )
    return results
