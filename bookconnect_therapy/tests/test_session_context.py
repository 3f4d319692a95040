from odoo.exceptions import UserError
from odoo.tests import tagged

from ..models.bookconnect_therapy_session import BILLING_WRITE, CALENDAR_SYNCED
from .common import SessionCase


@tagged("post_install", "-at_install", "bookconnect")
class TestContextKeys(SessionCase):
    """Each context key of an internal write means one thing."""

    def test_calendar_synced_only_skips_the_echo_to_the_calendar(self):
        session = self.book()
        event = session.calendar_event_id
        session.with_context(**{CALENDAR_SYNCED: True}).write(
            {"start": self.at(60), "stop": self.at(110)}
        )
        self.assertEqual(event.start, self.T0, "not written back to the calendar")
        session.write({"start": self.at(120), "stop": self.at(170)})
        self.assertEqual(event.start, self.at(120))
        session.write({"state": "invoiced"})
        with self.assertRaisesRegex(UserError, "is invoiced"):
            session.with_context(**{CALENDAR_SYNCED: True}).write({"start": self.at(0)})

    def test_billing_write_only_lifts_the_lock_of_an_invoiced_session(self):
        session = self.book()
        session.write({"state": "invoiced"})
        with self.assertRaisesRegex(UserError, "is invoiced"):
            session.write({"corrected_minutes": 40})
        session.with_context(**{BILLING_WRITE: True}).write(
            {"start": self.at(10), "stop": self.at(60)}
        )
        self.assertEqual(session.start, self.at(10))
        self.assertEqual(session.calendar_event_id.start, self.at(10), "the calendar follows")
