"""The demo's sessions, computed from the day and time the demo is installed, never book a
therapist or a client twice and fall on whole quarter hours, whatever that day and time."""

from datetime import datetime, timedelta
from itertools import combinations

from dateutil.relativedelta import relativedelta
from lxml import etree

from odoo.modules.module import get_manifest
from odoo.tests import TransactionCase, tagged
from odoo.tools import file_open
from odoo.tools.safe_eval import safe_eval

from ..models.bookconnect_booking import CANCELLED_STATES

MODULE = "bookconnect_therapy"
SESSION_MODEL = "bookconnect.therapy.session"
# A Monday (the day that used to book Dr. Morgan twice), then each day of that week.
FIRST_DAY = datetime(2026, 11, 30)


def frozen_datetime(now):
    """``datetime`` whose clock stands at ``now``, as the demo files' ``DateTime`` sees it."""

    class FrozenDateTime(datetime):
        @classmethod
        def now(cls, tz=None):
            return now

        @classmethod
        def today(cls):
            return now

    return FrozenDateTime


def demo_sessions(now):
    """The demo files' therapy sessions as they would be installed at ``now``.

    Evaluates the files' own expressions, as Odoo does when it loads them, with the clock
    standing at ``now``.

    :return: one dict per session: ``xmlid``, ``therapist`` and ``client`` (the xml ids they
        refer to), ``start`` and ``stop`` (datetimes).
    """
    clock = frozen_datetime(now)
    context = {
        "DateTime": clock,
        "datetime": clock,
        "timedelta": timedelta,
        "relativedelta": relativedelta,
        "ref": lambda xmlid: xmlid,
    }
    sessions = []
    for path in get_manifest(MODULE)["demo"]:
        with file_open(f"{MODULE}/{path}", "rb") as handle:
            root = etree.parse(handle).getroot()
        for record in root.iterfind(f"record[@model='{SESSION_MODEL}']"):
            fields = {field.get("name"): field for field in record.iterfind("field")}
            sessions.append(
                {
                    "xmlid": record.get("id"),
                    "therapist": fields["therapist_id"].get("ref"),
                    "client": fields["partner_id"].get("ref"),
                    **{
                        name: datetime.strptime(
                            safe_eval(fields[name].get("eval"), context), "%Y-%m-%d %H:%M:%S"
                        )
                        for name in ("start", "stop")
                    },
                }
            )
    return sessions


def double_bookings(sessions, who):
    """Pairs of sessions of the same ``who`` (``therapist`` or ``client``) that overlap."""
    return [
        (a["xmlid"], b["xmlid"])
        for a, b in combinations(sessions, 2)
        if a[who] == b[who] and a["start"] < b["stop"] and b["start"] < a["stop"]
    ]


def odd_times(sessions):
    """Sessions starting off a quarter hour or ending off a whole minute."""
    return [
        session["xmlid"]
        for session in sessions
        if session["start"].minute % 15
        or any(session[name].second or session[name].microsecond for name in ("start", "stop"))
    ]


@tagged("post_install", "-at_install", "bookconnect")
class TestDemoData(TransactionCase):
    def test_no_double_booking_whatever_the_day_and_time_of_installation(self):
        for day in range(7):
            for hour in range(24):
                # Seconds and microseconds on the clock, as a real installation has.
                now = FIRST_DAY + timedelta(days=day, hours=hour, minutes=37, seconds=29.5)
                with self.subTest(installed=now.strftime("%A %H:%M:%S")):
                    sessions = demo_sessions(now)
                    self.assertGreaterEqual(len(sessions), 6)
                    self.assertEqual(double_bookings(sessions, "therapist"), [])
                    self.assertEqual(double_bookings(sessions, "client"), [])
                    self.assertEqual(odd_times(sessions), [])

    def test_the_installed_demo(self):
        """The demo as this database installed it: no therapist in two sessions at once (their
        calendars agree), no seconds."""
        if not self.env.ref(f"{MODULE}.session_soon_demo", raise_if_not_found=False):
            self.skipTest("this database has no demo data")
        sessions = self.env[SESSION_MODEL].search([("state", "not in", CANCELLED_STATES)])
        self.assertGreaterEqual(len(sessions), 6)
        overlapping = [
            (a.name, b.name)
            for a, b in combinations(sessions, 2)
            if a.therapist_id == b.therapist_id and a.start < b.stop and b.start < a.stop
        ]
        self.assertEqual(overlapping, [])
        events = sessions.calendar_event_id
        self.assertEqual(len(events), len(sessions))
        with_seconds = [
            record.display_name
            for record in [*sessions, *events]
            if any(record[name].second or record[name].microsecond for name in ("start", "stop"))
        ]
        self.assertEqual(with_seconds, [])
