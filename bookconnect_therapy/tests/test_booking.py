from datetime import datetime, time, timedelta

from odoo import Command
from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged

from ..models.bookconnect_booking import SlotTaken
from .common import SessionCase

MONDAY = datetime(2026, 11, 30)  # winter: London is on UTC
NOW = MONDAY.replace(hour=6)


def weekly_hours(env, name, tz, hours):
    """A working-hours calendar: ``hours`` is a list of (weekday, from, to)."""
    return env["resource.calendar"].create(
        {
            "name": name,
            "tz": tz,
            "attendance_ids": [Command.clear()]
            + [
                Command.create(
                    {
                        "name": f"{name} {day}",
                        "dayofweek": str(day),
                        "hour_from": start,
                        "hour_to": end,
                        "day_period": "morning" if start < 12 else "afternoon",
                    }
                )
                for day, start, end in hours
            ],
        }
    )


def give_hours(env, user, calendar, tz):
    env["resource.resource"].create(
        {"name": user.name, "user_id": user.id, "calendar_id": calendar.id, "tz": tz}
    )


def open_weekday_mornings(env, company, therapist):
    """Online booking of 50-minute slots (10 min buffer, 2 h notice, 14 days ahead) with a
    therapist in London who works weekdays from 9:00 to 13:00."""
    company.write(
        {
            "bookconnect_booking_slot_minutes": 50,
            "bookconnect_booking_buffer_minutes": 10,
            "bookconnect_booking_notice_hours": 2,
            "bookconnect_booking_horizon_days": 14,
        }
    )
    therapist.write({"bookconnect_bookable": True, "tz": "Europe/London"})
    mornings = weekly_hours(
        env, "Weekday mornings", "Europe/London", [(d, 9, 13) for d in range(5)]
    )
    give_hours(env, therapist, mornings, "Europe/London")


@tagged("post_install", "-at_install", "bookconnect")
class TestBookingSlots(SessionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        open_weekday_mornings(cls.env, cls.company, cls.therapist)
        cls.Booking = cls.env["bookconnect.booking"]

    def slots(self, therapist=None, now=NOW):
        return self.Booking._free_slots(therapist or self.therapist, now=now)

    def starts_on(self, day, therapist=None, now=NOW):
        return [start.time() for start, _stop in self.slots(therapist, now) if start.date() == day]

    def event(self, start, stop, **values):
        return (
            self.env["calendar.event"]
            .with_context(no_mail_to_attendees=True)
            .create(
                {
                    "name": "Busy",
                    "start": start,
                    "stop": stop,
                    "partner_ids": [Command.set(self.therapist.partner_id.ids)],
                    "show_as": "busy",
                    **values,
                }
            )
        )

    def test_slots_follow_the_therapists_working_hours(self):
        slots = self.slots()
        monday = [(s, e) for s, e in slots if s.date() == MONDAY.date()]
        self.assertEqual(
            monday,
            [(MONDAY.replace(hour=h), MONDAY.replace(hour=h, minute=50)) for h in (9, 10, 11, 12)],
        )
        self.assertTrue(all(s.weekday() < 5 and 9 <= s.hour < 13 for s, _e in slots))
        # Ten weekdays in the next fourteen days, four slots each.
        self.assertEqual(len(slots), 40)

    def test_working_hours_are_read_in_the_therapists_time_zone(self):
        june = datetime(2026, 6, 1, 5, 0)  # London on BST (UTC+1)
        self.assertEqual(
            self.starts_on(june.date(), now=june), [time(8), time(9), time(10), time(11)]
        )

    def test_company_hours_when_the_therapist_has_none(self):
        self.therapist_b.write({"bookconnect_bookable": True, "tz": "America/New_York"})
        self.company.resource_calendar_id = weekly_hours(
            self.env, "Company", "UTC", [(d, 9, 11) for d in range(5)]
        )
        # 9:00 in New York is 14:00 UTC in winter.
        self.assertEqual(self.starts_on(MONDAY.date(), self.therapist_b), [time(14), time(15)])

    def test_busy_events_and_the_buffer_are_left_out(self):
        self.event(MONDAY.replace(hour=10), MONDAY.replace(hour=10, minute=30))
        # Blocked 9:50-10:40; the next quarter hour after that is 10:45.
        self.assertEqual(self.starts_on(MONDAY.date()), [time(9), time(10, 45), time(11, 45)])

    def test_free_declined_and_unrelated_events_do_not_block(self):
        at10, at11 = MONDAY.replace(hour=10), MONDAY.replace(hour=11)
        self.event(at10, at11, show_as="free")
        declined = self.event(at10, at11)
        declined.attendee_ids.filtered(
            lambda a: a.partner_id == self.therapist.partner_id
        ).state = "declined"
        self.event(at10, at11, partner_ids=[Command.set(self.client.ids)])
        self.assertEqual(self.starts_on(MONDAY.date()), [time(9), time(10), time(11), time(12)])

    def test_all_day_event_blocks_the_whole_day(self):
        tuesday = MONDAY + timedelta(days=1)
        self.event(tuesday.replace(hour=8), tuesday.replace(hour=18), allday=True)
        self.assertEqual(self.starts_on(tuesday.date()), [])
        self.assertEqual(len(self.starts_on(MONDAY.date())), 4)

    def test_public_holiday_blocks_the_day(self):
        wednesday = MONDAY + timedelta(days=2)
        calendar = self.therapist.resource_calendar_id
        self.env["resource.calendar.leaves"].create(
            {
                "name": "Holiday",
                "calendar_id": calendar.id,
                "date_from": wednesday,
                "date_to": wednesday + timedelta(days=1),
            }
        )
        self.assertEqual(self.starts_on(wednesday.date()), [])

    def test_sessions_block_their_time_unless_cancelled(self):
        session = self.book(start=MONDAY.replace(hour=10))
        self.assertEqual(self.starts_on(MONDAY.date()), [time(9), time(11), time(12)])
        session.action_cancel()
        self.assertEqual(self.starts_on(MONDAY.date()), [time(9), time(10), time(11), time(12)])

    def test_notice_and_horizon(self):
        now = MONDAY.replace(hour=9, minute=30)
        self.assertEqual(self.starts_on(MONDAY.date(), now=now), [time(11, 30)])
        self.company.bookconnect_booking_horizon_days = 1
        self.assertEqual([s for s, _e in self.slots(now=now)], [MONDAY.replace(hour=11, minute=30)])

    def test_booking_creates_the_session_and_takes_the_slot(self):
        start = MONDAY.replace(hour=10)
        session = self.Booking._book(self.therapist, self.client, start, now=NOW)
        self.assertEqual(session.therapist_id, self.therapist)
        self.assertEqual(session.partner_id, self.client)
        self.assertEqual(session.company_id, self.therapist.company_id)
        self.assertEqual((session.start, session.stop), (start, start + timedelta(minutes=50)))
        self.assertEqual(session.state, "scheduled")
        self.assertEqual(session.calendar_event_id.start, start)
        self.assertNotIn(start.time(), self.starts_on(MONDAY.date()))
        with self.assertRaisesRegex(SlotTaken, "no longer available"):
            self.Booking._book(self.therapist, self.client_b, start, now=NOW)

    def test_booking_refuses_times_not_offered(self):
        saturday = MONDAY + timedelta(days=5)
        for start in (
            MONDAY.replace(hour=9, minute=5),  # off the grid
            saturday.replace(hour=10),  # not a working day
            NOW.replace(hour=7),  # before working hours (and the notice)
            MONDAY + timedelta(days=20, hours=10),  # beyond the horizon
        ):
            with self.subTest(start=start), self.assertRaises(SlotTaken):
                self.Booking._book(self.therapist, self.client, start, now=NOW)

    def test_a_client_cannot_be_in_two_sessions_at_once(self):
        self.book(start=MONDAY.replace(hour=9), therapist=self.therapist_b)
        with self.assertRaisesRegex(UserError, "already have a session"):
            self.Booking._book(self.therapist, self.client, MONDAY.replace(hour=9), now=NOW)

    def test_bookable_therapists_and_their_addresses(self):
        portal_flagged = self._make_user("Portal Person", "pp", [], portal=True)
        portal_flagged.bookconnect_bookable = True
        therapists = self.Booking._bookable_therapists()
        self.assertIn(self.therapist, therapists)
        self.assertNotIn(self.therapist_b, therapists)
        self.assertNotIn(portal_flagged, therapists)
        slug = self.env["ir.http"]._slug(self.therapist)
        self.assertEqual(slug, f"alex-therapist-{self.therapist.id}")
        self.assertEqual(self.Booking._therapist_from_slug(slug), self.therapist)
        self.assertEqual(self.Booking._therapist_from_slug(str(self.therapist.id)), self.therapist)
        for value in (str(self.therapist_b.id), str(portal_flagged.id), "nobody", "", None):
            self.assertFalse(self.Booking._therapist_from_slug(value), value)

    def test_visitor_signup_creates_a_new_portal_client(self):
        existing = self.env["res.partner"].create(
            {"name": "Someone Else", "email": "new.person@example.com"}
        )
        user = self.Booking._signup_client(
            "New Person", " New.Person@Example.com ", "long enough", tz="Europe/Paris"
        )
        self.assertEqual(user.login, "new.person@example.com")
        self.assertTrue(user.has_group("base.group_portal"))
        self.assertFalse(user.has_group("base.group_user"))
        self.assertEqual(user.partner_id.name, "New Person")
        self.assertEqual(user.partner_id.tz, "Europe/Paris")
        self.assertNotEqual(user.partner_id, existing, "never an existing contact with that email")
        with self.assertRaisesRegex(UserError, "already exists"):
            self.Booking._signup_client("Again", "new.person@example.com", "long enough")
        with self.assertRaisesRegex(UserError, "already exists"):
            self.Booking._signup_client("Casey", "casey@example.com", "long enough")
        with self.assertRaisesRegex(UserError, "at least 8"):
            self.Booking._signup_client("Short", "short@example.com", "short")
        with self.assertRaisesRegex(UserError, "valid email"):
            self.Booking._signup_client("Bad", "not an email", "long enough")
        with self.assertRaisesRegex(UserError, "your name"):
            self.Booking._signup_client("  ", "noname@example.com", "long enough")

    def test_signup_refuses_names_with_control_characters(self):
        for name in ("Jo\x00e", "Jo\ne", "\u202eeoJ"):
            with self.subTest(name=name), self.assertRaisesRegex(UserError, "cannot be used"):
                self.Booking._signup_client(name, "jo@example.com", "long enough")

    def test_settings_are_validated(self):
        for field, value in (
            ("bookconnect_booking_slot_minutes", 0),
            ("bookconnect_booking_buffer_minutes", -5),
            ("bookconnect_booking_notice_hours", -1),
            ("bookconnect_booking_horizon_days", 0),
        ):
            with self.subTest(field=field), self.assertRaises(ValidationError):
                self.company.write({field: value})
