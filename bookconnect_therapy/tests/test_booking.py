import threading
from datetime import datetime, time, timedelta
from unittest.mock import patch
from urllib.parse import parse_qs, urlparse

from lxml import html

from odoo import SUPERUSER_ID, Command, api, fields
from odoo.exceptions import UserError, ValidationError
from odoo.modules.registry import Registry
from odoo.service.model import retrying
from odoo.tests import BaseCase, tagged
from odoo.tests.common import get_db_name
from odoo.tools import format_datetime, mute_logger
from odoo.tools.misc import dumpstacks

from ..models.bookconnect_booking import SlotTaken
from .common import SessionCase
from .test_portal import PortalCase, select

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


@tagged("post_install", "-at_install", "bookconnect")
class TestBookingPortal(PortalCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tour_therapist = cls._make_user("Tour Therapist", "tour", [cls.group_therapist])
        cls.tour_therapist.write(
            {
                "bookconnect_bookable": True,
                "tz": "Europe/London",
                "bookconnect_booking_intro": "Online sessions, any day.",
            }
        )
        around_the_clock = weekly_hours(
            cls.env, "Around the clock", "UTC", [(d, 0, 24) for d in range(7)]
        )
        give_hours(cls.env, cls.tour_therapist, around_the_clock, "UTC")
        cls.slug = cls.env["ir.http"]._slug(cls.tour_therapist)
        cls.Booking = cls.env["bookconnect.booking"]

    def a_slot(self):
        # The second slot: the first may fall under the notice period if the clock passes a
        # quarter hour between the page and the click.
        return self.Booking._free_slots(self.tour_therapist)[1][0]

    def confirm_url(self, start):
        return f"/book/{self.slug}/confirm?start={fields.Datetime.to_string(start)}"

    def sessions_with_tour_therapist(self):
        return self.env["bookconnect.therapy.session"].search(
            [("therapist_id", "=", self.tour_therapist.id)]
        )

    def test_tour_booking_a_slot_then_seeing_it_in_my_sessions(self):
        before = fields.Datetime.now()
        self.start_tour("/book", "bookconnect_portal_booking", login="bc_cc")
        session = self.sessions_with_tour_therapist()
        self.assertEqual(len(session), 1)
        self.assertEqual(session.partner_id, self.client)
        self.assertEqual(session.state, "scheduled")
        self.assertEqual(session.duration, 50)
        self.assertGreaterEqual(session.start, before + timedelta(hours=2))
        self.assertEqual(session.start.minute % 15, 0)

    def test_booking_pages_for_a_visitor_in_their_browsers_time_zone(self):
        self.authenticate(None, None)
        self.opener.cookies.set("tz", "America/New_York")
        therapists = html.fromstring(self.url_open("/book").content)
        self.assertTrue(therapists.xpath(f"//a[@href='/book/{self.slug}']"))
        page = html.fromstring(self.url_open(f"/book/{self.slug}").content)
        self.assertIn("Times are shown in America/New_York", page.text_content())
        buttons = select(page, "a.o_bookconnect_slot")
        slots = self.Booking._free_slots(self.tour_therapist)
        self.assertEqual(len(buttons), len(slots))
        first = slots[0][0]  # rendered and computed in the same quarter hour: see a_slot()
        self.assertEqual(
            buttons[0].text_content().strip(),
            format_datetime(self.env, first, tz="America/New_York", dt_format="HH:mm"),
        )
        query = parse_qs(urlparse(buttons[0].get("href")).query)
        self.assertEqual(query["start"], [fields.Datetime.to_string(first)])

    def test_unknown_or_unbookable_therapist_is_not_found(self):
        for path in ("/book/999999", f"/book/{self.therapist.id}", "/book/nobody"):
            with self.subTest(path=path):
                self.assertEqual(self.url_open(path).status_code, 404)
        self.assertEqual(
            self.url_open(f"/book/{self.therapist.id}/confirm?start=2030-01-01").status_code, 404
        )

    def test_visitor_books_and_becomes_a_signed_in_client(self):
        self.authenticate(None, None)
        start = self.a_slot()
        page = html.fromstring(self.url_open(self.confirm_url(start)).content)
        self.assertTrue(select(page, "input[name=name]"))
        self.assertTrue(select(page, "input[name=email]"))
        self.assertTrue(select(page, "input[name=password]"))
        response = self.post(
            f"/book/{self.slug}/confirm",
            start=fields.Datetime.to_string(start),
            name="Riley Visitor",
            email="riley@example.com",
            password="a good password",
        )
        session = self.sessions_with_tour_therapist()
        self.assertEqual(len(session), 1)
        self.assertRedirects(response, session.access_url)
        user = self.env["res.users"].search([("login", "=", "riley@example.com")])
        self.assertTrue(user.has_group("base.group_portal"))
        self.assertEqual(session.partner_id, user.partner_id)
        self.assertEqual(session.start, start)
        # The visitor is now signed in: My sessions lists the new session. (The test client
        # still holds the signed-out cookie the test set for any host; a browser keeps one.)
        self.assertTrue(response.cookies.get("session_id"))
        self.opener.cookies.clear("", "/", "session_id")
        my_sessions = self.url_open("/my/sessions")
        self.assertEqual(urlparse(my_sessions.url).path, "/my/sessions")
        self.assertIn(session.name, my_sessions.text)

    def test_visitor_with_an_account_is_asked_to_sign_in(self):
        self.authenticate(None, None)
        response = self.post(
            f"/book/{self.slug}/confirm",
            start=fields.Datetime.to_string(self.a_slot()),
            name="Casey again",
            email="casey@example.com",
            password="a good password",
        )
        self.assertEqual(response.status_code, 200)
        self.assertIn("already exists", response.text)
        self.assertIn("/web/login?redirect=", response.text)
        self.assertFalse(self.sessions_with_tour_therapist())

    def test_new_clients_can_be_turned_off(self):
        self.company.bookconnect_booking_new_clients = False
        self.authenticate(None, None)
        start = fields.Datetime.to_string(self.a_slot())
        page = html.fromstring(self.url_open(self.confirm_url(self.a_slot())).content)
        self.assertFalse(select(page, "input[name=email]"))
        self.assertIn("Sign in to book", page.text_content())
        response = self.post(
            f"/book/{self.slug}/confirm",
            start=start,
            name="Riley",
            email="riley@example.com",
            password="a good password",
        )
        self.assertEqual(response.status_code, 404)
        self.assertFalse(self.sessions_with_tour_therapist())

    def test_slot_gone_between_the_page_and_the_click(self):
        start = self.a_slot()
        self.authenticate("bc_cc", "bc_cc")
        self.assertEqual(self.url_open(self.confirm_url(start)).status_code, 200)
        self.Booking._book(self.tour_therapist, self.client_b, start)
        response = self.post(f"/book/{self.slug}/confirm", start=fields.Datetime.to_string(start))
        self.assertRedirects(response, f"/book/{self.slug}")
        self.assertIn("taken=1", response.headers["Location"])
        page = html.fromstring(self.url_open(response.headers["Location"]).content)
        self.assertTrue(select(page, ".o_bookconnect_slot_taken"))
        self.assertEqual(self.sessions_with_tour_therapist().partner_id, self.client_b)
        # The confirmation page of a slot already gone sends back to the free times too.
        self.assertRedirects(self.get(self.confirm_url(start)), f"/book/{self.slug}")

    def test_booking_needs_a_csrf_token(self):
        self.authenticate("bc_cc", "bc_cc")
        response = self.url_open(
            f"/book/{self.slug}/confirm",
            data={"start": fields.Datetime.to_string(self.a_slot())},
            allow_redirects=False,
        )
        self.assertEqual(response.status_code, 400)
        self.assertFalse(self.sessions_with_tour_therapist())

    def test_confirmation_shows_price_and_cancellation_then_asks_for_a_card(self):
        self.client.bookconnect_policy_id = self.policy(
            name="Card first", mode="session", rate=75, require_card=True, free_cancel_hours=24
        )
        self.authenticate("bc_cc", "bc_cc")
        start = self.a_slot()
        page = html.fromstring(self.url_open(self.confirm_url(start)).content)
        text = page.text_content()
        self.assertIn("75.00", text)
        # No late fee: nothing to warn about, even two hours before the start.
        self.assertEqual(
            select(page, ".o_bookconnect_if_cancelled")[0].text_content(), "Cancelling is free."
        )
        self.assertIn("Tour Therapist", text)
        response = self.post(f"/book/{self.slug}/confirm", start=fields.Datetime.to_string(start))
        session = self.sessions_with_tour_therapist()
        self.assertRedirects(response, session.access_url)
        page = html.fromstring(self.url_open(response.headers["Location"]).content)
        self.assertIn("One more step", select(page, ".o_bookconnect_booked")[0].text_content())
        self.assertTrue(select(page, ".o_bookconnect_requirement_card"))
        self.assertTrue(session.booked_online)
        self.assertTrue(session.confirm_by)
        deadline = select(page, ".o_bookconnect_confirm_by")[0].text_content()
        self.assertIn("released for other clients", deadline)
        shown_tz = deadline.split("(")[1].split(")")[0]
        self.assertIn(format_datetime(self.env, session.confirm_by, shown_tz, "HH:mm"), deadline)


@tagged("post_install", "-at_install", "bookconnect")
class TestBookingRace(BaseCase):
    """Two clients book the same slot at the same moment, in transactions that really commit:
    exactly one gets it, the other is told it is gone."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.registry = Registry(get_db_name())

    def _setup(self):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {"tracking_disable": True})
            therapist = env["res.users"].create(
                {
                    "name": "Race Booking Therapist",
                    "login": f"race_booking_{id(self)}",
                    "tz": "UTC",
                    "bookconnect_bookable": True,
                    "groups_id": [Command.set([env.ref("bookconnect_therapy.group_therapist").id])],
                }
            )
            give_hours(
                env,
                therapist,
                weekly_hours(env, "Race hours", "UTC", [(d, 0, 24) for d in range(7)]),
                "UTC",
            )
            therapist.bookconnect_policy_id = env["bookconnect.billing.policy"].create(
                {"name": "Race booking", "mode": "session", "rate": 50.0}
            )
            clients = env["res.partner"].create(
                [{"name": f"Racer {n}", "email": f"racer{n}@example.com"} for n in (1, 2)]
            )
            start = env["bookconnect.booking"]._free_slots(therapist)[0][0]
            return therapist.id, clients.ids, start

    def _cleanup(self, therapist_id):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            env["bookconnect.therapy.session"].search(
                [("therapist_id", "=", therapist_id)]
            ).unlink()
            env["res.users"].browse(therapist_id).write(
                {"bookconnect_bookable": False, "active": False}
            )

    def _book_in_thread(self, therapist_id, partner_id, start, barrier, outcomes):
        try:
            with self.registry.cursor() as cr:
                # The registry is already loaded: hand it over instead of looking it up, which
                # would wait on the lock the test runner holds while tests run.
                cr.transaction = api.Transaction(self.registry)
                env = api.Environment(cr, SUPERUSER_ID, {})
                # Both transactions read before either books: their snapshots predate the race.
                env["bookconnect.booking"]._free_slots(env["res.users"].browse(therapist_id))
                barrier.wait(timeout=30)

                def book():
                    return (
                        env["bookconnect.booking"]
                        ._book(
                            env["res.users"].browse(therapist_id),
                            env["res.partner"].browse(partner_id),
                            start,
                        )
                        .id
                    )

                # What Odoo does around every request: retry on serialisation failures.
                outcomes[partner_id] = retrying(book, env)
        except Exception as exc:  # the loser's answer
            outcomes[partner_id] = exc

    @mute_logger("odoo.sql_db", "odoo.service.model")
    def test_two_clients_racing_for_one_slot(self):
        therapist_id, partner_ids, start = self._setup()
        self.addCleanup(self._cleanup, therapist_id)
        barrier = threading.Barrier(2)
        outcomes = {}
        threads = [
            threading.Thread(
                target=self._book_in_thread,
                args=(therapist_id, partner_id, start, barrier, outcomes),
            )
            for partner_id in partner_ids
        ]
        # retrying() resets the transaction by looking the registry up again, which would wait
        # on the lock the test runner holds: the registry is loaded, so reset only the caches.
        with patch.object(api.Transaction, "reset", api.Transaction.clear):
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
        if any(thread.is_alive() for thread in threads):
            dumpstacks()
            self.fail(f"a booking is still waiting after a minute: {outcomes}")
        winners = [p for p, outcome in outcomes.items() if isinstance(outcome, int)]
        losers = [p for p, outcome in outcomes.items() if isinstance(outcome, SlotTaken)]
        self.assertEqual((len(winners), len(losers)), (1, 1), f"outcomes: {outcomes}")
        self.assertIn("no longer available", str(outcomes[losers[0]]))
        with self.registry.cursor() as cr:
            cr.execute(
                "SELECT partner_id, start FROM bookconnect_therapy_session"
                " WHERE therapist_id = %s AND state NOT IN ('cancelled', 'late_cancelled')",
                [therapist_id],
            )
            self.assertEqual(cr.fetchall(), [(winners[0], start)])
