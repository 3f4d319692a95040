"""The client's view of money in the portal: fees after a cancellation, what cancelling costs
before and after booking, a prepaid balance that will not cover the next session, the balance
page on a phone, the salesperson on session invoices, and clear answers for slots that cannot
be booked."""

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlparse

from lxml import html

from odoo import fields
from odoo.tests import tagged

from .test_booking import give_hours, weekly_hours
from .test_portal import PortalCase, select


class PortalMoneyCase(PortalCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.prepaid = cls._make_policy(
            name="Prepaid",
            mode="minute",
            rate=0.65,
            collection="portal",
            prepayment="balance",
            minimum_balance=5.0,
        )

    def pay_in_advance(self, amount, partner=None):
        """An advance payment of the client: prepaid balance in the ledger."""
        payment = self.env["account.payment"].create(
            {
                "payment_type": "inbound",
                "partner_type": "customer",
                "partner_id": (partner or self.client).id,
                "amount": amount,
            }
        )
        payment.action_post()
        return payment

    def text(self, page, selector):
        """The text of the elements, white space squeezed (no-break spaces kept)."""
        return " ".join(
            re.sub(r"[ \t\r\n]+", " ", e.text_content()).strip() for e in select(page, selector)
        )


@tagged("post_install", "-at_install", "bookconnect")
class TestPortalFees(PortalMoneyCase):
    def test_a_late_cancellation_shows_its_fee_and_no_empty_box(self):
        session = self.book_in(2 * 60, policy_id=self.policy_late_fee.id)
        self.authenticate("bc_cc", "bc_cc")
        self.post(f"/my/sessions/{session.id}/cancel", confirm_late="1")
        self.assertEqual(session.fee_state, "pending")
        page = self.page(f"{session.access_url}?cancelled=1")
        fee = self.text(page, ".o_bookconnect_money_line[data-kind=fee]")
        due = session._client_time(session.fee_charge_id.due_at, tz="Europe/London")
        for text in ("Late-cancellation fee", "20.00", f"In review until {due}", "may waive it"):
            self.assertIn(text, fee)
        self.assertIn("(Europe/London)", due)
        # Nothing left to do on a cancelled session: no actions box, and no box is empty.
        self.assertFalse(select(page, ".o_bookconnect_actions"))
        for body in select(page, "div.card-body"):
            self.assertTrue(body.text_content().strip(), "an empty box")
        # The list says it too.
        row = self.text(self.page("/my/sessions"), "tr.o_bookconnect_session_row")
        self.assertIn("20.00", row)
        self.assertIn("fee in review", row)

        session.with_user(self.manager)._waive_fee("Goodwill")
        page = self.page(session.access_url)
        self.assertEqual(
            self.text(page, ".o_bookconnect_money_line[data-kind=fee] .o_bookconnect_money_state"),
            "Waived",
        )
        self.assertIn("fee waived", self.text(self.page("/my/sessions"), "tr"))

    def test_the_invoice_names_the_therapist_not_the_robot(self):
        session = self.invoiced_session()
        self.assertEqual(session.invoice_id.invoice_user_id, self.therapist)
        self.authenticate("bc_cc", "bc_cc")
        page = self.page(session.invoice_id.get_portal_url())
        self.assertIn("Alex Therapist", page.text_content())
        self.assertNotIn("OdooBot", page.text_content())
        lines = select(self.page(session.access_url), ".o_bookconnect_money_line")
        self.assertEqual([line.get("data-state") for line in lines], ["to_pay"])


@tagged("post_install", "-at_install", "bookconnect")
class TestPortalCancellingTerms(PortalMoneyCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.policy_late_fee.cancel_grace_minutes = 10

    def test_a_session_booked_inside_the_window_says_what_cancelling_costs(self):
        session = self.book_in(3 * 60, policy_id=self.policy_late_fee.id)
        self.authenticate("bc_cc", "bc_cc")
        terms = self.text(self.page(session.access_url), ".o_bookconnect_if_cancelled")
        until = session._client_time(session.booked_at + timedelta(minutes=10), "Europe/London")
        self.assertIn("booked within the 24-hour free-cancellation window", terms)
        self.assertIn(f"cancel it free until {until} (10 minutes after booking)", terms)
        self.assertIn("cancelling costs $\xa020.00", terms)
        cancel = self.text(self.page(f"/my/sessions/{session.id}/cancel"), ".alert-success")
        self.assertIn("you booked this session less than 10 minutes ago", cancel)
        self.post(f"/my/sessions/{session.id}/cancel", confirm_late="0")
        self.assertEqual(session.state, "cancelled", "free within the grace")
        self.assertFalse(session.fee_state)

    def test_after_the_grace_cancelling_costs_the_fee(self):
        session = self.book_in(3 * 60, policy_id=self.policy_late_fee.id)
        session.write({"booked_at": self.now() - timedelta(minutes=11)})
        self.authenticate("bc_cc", "bc_cc")
        consequence = self.text(
            self.page(f"/my/sessions/{session.id}/cancel"), ".o_bookconnect_cancel_consequence"
        )
        self.assertIn("Cancelling now costs $\xa020.00", consequence)
        # Not "free cancellation ended" at a time before it was even booked.
        self.assertIn("booked within the 24-hour free-cancellation window", consequence)
        self.assertNotIn("ended on", consequence)
        terms = self.text(self.page(session.access_url), ".o_bookconnect_if_cancelled")
        self.assertEqual(
            terms,
            "This session starts within the 24-hour free-cancellation window: cancelling it "
            "costs $\xa020.00.",
        )

    def test_a_session_booked_well_ahead_says_until_when_it_is_free(self):
        session = self.book_in(3 * 24 * 60, policy_id=self.policy_late_fee.id)
        self.authenticate("bc_cc", "bc_cc")
        terms = self.text(self.page(session.access_url), ".o_bookconnect_if_cancelled")
        until = session._client_time(session.start - timedelta(hours=24), "Europe/London")
        self.assertEqual(
            terms, f"Cancelling is free until {until}; after that, it costs $\xa020.00."
        )


@tagged("post_install", "-at_install", "bookconnect")
class TestPortalPrepaidBalance(PortalMoneyCase):
    def test_a_balance_that_will_not_cover_the_next_session_is_told_with_a_top_up_link(self):
        self.pay_in_advance(7.25)
        session = self.book_in(2 * 24 * 60, policy_id=self.prepaid.id)
        self.assertEqual(session.estimated_amount, 32.5)
        self.authenticate("bc_cc", "bc_cc")
        for url in ("/my/sessions", session.access_url, "/my/balance"):
            with self.subTest(url=url):
                page = self.page(url)
                [alert] = select(page, ".o_bookconnect_shortfall")
                text = alert.text_content()
                for amount in ("32.50", "7.25", "25.25"):
                    self.assertIn(amount, text)
                self.assertTrue(alert.xpath(".//a[starts-with(@href, '/my/balance#')]"))
        self.pay_in_advance(30.0)
        self.assertFalse(select(self.page("/my/sessions"), ".o_bookconnect_shortfall"))

    def test_the_balance_entry_on_my_home_is_for_prepaid_clients_only(self):
        self.authenticate("bc_cc", "bc_cc")

        def counter():
            return self.make_jsonrpc_request("/my/counters", {"counters": ["bookconnect_balance"]})[
                "bookconnect_balance"
            ]

        self.assertEqual(counter(), 0, "not prepaid, nothing on the balance: hidden")
        session = self.book_in(2 * 24 * 60, policy_id=self.prepaid.id)
        self.assertEqual(counter(), "$\xa00.00", "a prepaid session: shown")
        session.action_cancel()
        session.policy_id = self.policy_late_fee
        self.assertEqual(counter(), 0)
        self.client.bookconnect_policy_id = self.prepaid
        self.assertEqual(counter(), "$\xa00.00", "a prepaid policy of their own: shown")
        self.client.bookconnect_policy_id = False
        self.pay_in_advance(3.0)
        self.assertEqual(counter(), "$\xa03.00", "a balance: shown")

    def test_the_balance_history_fits_a_phone(self):
        self.pay_in_advance(20.0)
        self.authenticate("bc_cc", "bc_cc")
        page = self.page("/my/balance")
        [row] = select(page, "tbody[id=bookconnect_balance_history] tr")
        cells = row.xpath("./td")
        # On a narrow screen only two columns show; the date and the running total go under
        # the label and the amount.
        narrow = [c for c in cells if "d-none" not in (c.get("class") or "")]
        self.assertEqual(len(narrow), 2)
        self.assertIn("= $\xa020.00", narrow[1].text_content())
        self.assertTrue(narrow[0].xpath(".//*[contains(@class, 'o_bookconnect_history_date')]"))
        headers = select(page, "table thead th")
        self.assertEqual(
            [h.text_content() for h in headers if "d-none" not in (h.get("class") or "")],
            ["What", "Amount"],
        )


@tagged("post_install", "-at_install", "bookconnect")
class TestPortalBookingMoney(PortalMoneyCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company.write(
            {
                "bookconnect_booking_slot_minutes": 50,
                "bookconnect_booking_buffer_minutes": 10,
                "bookconnect_booking_notice_hours": 2,
                "bookconnect_booking_horizon_days": 14,
            }
        )
        cls.booker = cls._make_user("Booking Therapist", "booker", [cls.group_therapist])
        cls.booker.write(
            {
                "bookconnect_bookable": True,
                "tz": "Europe/London",
                "bookconnect_policy_id": cls.policy_late_fee.id,
            }
        )
        around_the_clock = weekly_hours(
            cls.env, "Around the clock", "UTC", [(d, 0, 24) for d in range(7)]
        )
        give_hours(cls.env, cls.booker, around_the_clock, "UTC")
        cls.slug = cls.env["ir.http"]._slug(cls.booker)
        cls.Booking = cls.env["bookconnect.booking"]

    def slots(self):
        return self.Booking._free_slots(self.booker)

    def confirm_url(self, start):
        return f"/book/{self.slug}/confirm?start={fields.Datetime.to_string(start)}"

    def reason_of(self, response):
        """The reason a refused slot was sent back with, and the message shown for it."""
        self.assertRedirects(response, f"/book/{self.slug}")
        query = parse_qs(urlparse(response.headers["Location"]).query)
        page = html.fromstring(self.url_open(response.headers["Location"]).content)
        [alert] = select(page, ".o_bookconnect_slot_unavailable")
        reason = "taken" if query.get("taken") else query["unavailable"][0]
        self.assertEqual(alert.get("data-reason"), reason)
        return reason, " ".join(alert.text_content().split())

    def test_booking_inside_the_window_says_what_cancelling_will_cost(self):
        self.authenticate("bc_cc", "bc_cc")
        soon = self.slots()[1][0]  # within the 24-hour window: booked, cancelling costs
        page = html.fromstring(self.url_open(self.confirm_url(soon)).content)
        warning = self.text(page, ".o_bookconnect_if_cancelled_warning")
        self.assertIn("starts within the 24-hour free-cancellation window", warning)
        self.assertIn("once booked, cancelling it costs $\xa020.00", warning)
        self.assertNotIn("Free until", page.text_content())

        self.policy_late_fee.cancel_grace_minutes = 10
        page = html.fromstring(self.url_open(self.confirm_url(soon)).content)
        warning = self.text(page, ".o_bookconnect_if_cancelled_warning")
        self.assertIn("(10 minutes after booking); after that, cancelling costs", warning)

        later = next(s for s, _e in self.slots() if s > fields.Datetime.now() + timedelta(days=2))
        page = html.fromstring(self.url_open(self.confirm_url(later)).content)
        self.assertFalse(select(page, ".o_bookconnect_if_cancelled_warning"))
        until = format(later - timedelta(hours=24), "%H:%M")
        terms = self.text(page, ".o_bookconnect_if_cancelled")
        self.assertIn("Cancelling is free until ", terms)
        self.assertIn(until, terms)

    def test_booking_a_prepaid_session_the_balance_will_not_cover(self):
        self.booker.bookconnect_policy_id = self.prepaid
        self.pay_in_advance(7.25)
        self.authenticate("bc_cc", "bc_cc")
        page = html.fromstring(self.url_open(self.confirm_url(self.slots()[1][0])).content)
        [alert] = select(page, ".o_bookconnect_shortfall")
        self.assertIn("will not cover this session", alert.text_content())
        self.assertIn("25.25", alert.text_content())
        self.assertTrue(alert.xpath(".//a[starts-with(@href, '/my/balance#')]"))

    def test_slots_that_cannot_be_booked_say_why(self):
        self.authenticate("bc_cc", "bc_cc")
        slot = self.slots()[1][0]
        now = fields.Datetime.now().replace(second=0, microsecond=0)
        cases = {
            "not a time": ("not_offered", "not one of the times"),
            fields.Datetime.to_string(slot + timedelta(minutes=5)): (
                "not_offered",
                "not one of the times",
            ),
            fields.Datetime.to_string(now - timedelta(days=1)): ("past", "already passed"),
            "0001-01-01 00:00:00": ("past", "already passed"),
            "9999-12-31 23:45:00": ("window", "from 2 hours to 14 days ahead"),
            fields.Datetime.to_string(now.replace(minute=0) + timedelta(days=30)): (
                "window",
                "from 2 hours to 14 days ahead",
            ),
        }
        for start, (reason, words) in cases.items():
            with self.subTest(start=start):
                response = self.get(f"/book/{self.slug}/confirm?start={start}")
                shown_reason, message = self.reason_of(response)
                self.assertEqual(shown_reason, reason)
                self.assertIn(words, message)
                # Posting the form with it says the same.
                posted = self.post(f"/book/{self.slug}/confirm", start=start)
                self.assertEqual(self.reason_of(posted)[0], reason)
        self.Booking._book(self.booker, self.client_b, slot)
        reason, words = self.reason_of(self.get(self.confirm_url(slot)))
        self.assertEqual(reason, "taken")
        self.assertIn("no longer available", words)
