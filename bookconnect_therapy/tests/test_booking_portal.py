from datetime import timedelta
from urllib.parse import parse_qs, urlparse

from lxml import html

from odoo import fields
from odoo.tests import tagged
from odoo.tools import format_datetime

from .test_booking import give_hours, weekly_hours
from .test_portal import PortalCase, select


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
