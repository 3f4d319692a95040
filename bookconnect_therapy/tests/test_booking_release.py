from datetime import timedelta

from freezegun import freeze_time

from odoo.exceptions import ValidationError
from odoo.tests import tagged

from odoo.addons.mail.tests.common import MailCase

from .common import StripeSessionCase
from .test_booking import MONDAY, NOW, open_weekday_mornings

SLOT = MONDAY.replace(hour=10)


@tagged("post_install", "-at_install", "bookconnect")
class TestUnconfirmedBookingsAreReleased(StripeSessionCase, MailCase):
    """An online booking whose payment terms ask for a saved card or payment in advance holds
    its slot only for the practice's time to confirm."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        open_weekday_mornings(cls.env, cls.company, cls.therapist)
        cls.company.bookconnect_booking_confirm_minutes = 30
        cls.card_first = cls._make_policy(
            name="Card first", mode="session", rate=75, collection="card", require_card=True
        )
        cls.paid_ahead = cls._make_policy(
            name="Paid ahead", mode="session", rate=90, prepayment="full"
        )
        cls.Booking = cls.env["bookconnect.booking"]
        cls.Session = cls.env["bookconnect.therapy.session"]

    def book_online(self, policy, client=None, start=SLOT):
        client = client or self.client_b  # Dana has no saved card
        client.bookconnect_policy_id = policy
        with freeze_time(NOW):
            return self.Booking._book(self.therapist, client, start, now=NOW)

    def release(self, minutes_after_booking):
        with freeze_time(NOW + timedelta(minutes=minutes_after_booking)):
            return self.env["bookconnect.booking"]._cron_release_unconfirmed_bookings()

    def offered(self):
        return [start for start, _stop in self.Booking._free_slots(self.therapist, now=NOW)]

    def test_booking_without_the_card_is_released_after_the_time_to_confirm(self):
        session = self.book_online(self.card_first)
        self.assertTrue(session.booked_online)
        self.assertEqual(self.env["bookconnect.booking"]._booking_requirements(session), ["card"])
        self.assertEqual(session.confirm_by, NOW + timedelta(minutes=30))
        self.assertNotIn(SLOT, self.offered())

        self.assertFalse(self.release(29))
        self.assertEqual(session.state, "scheduled")

        with self.mock_mail_gateway():
            released = self.release(31)
        self.assertEqual(released, session)
        self.assertEqual(session.state, "cancelled")
        self.assertEqual(session.cancelled_by, "unconfirmed")
        self.assertFalse(session.fee_state, "releasing a booking never costs a fee")
        self.assertFalse(session.calendar_event_id.active)
        self.assertIn(SLOT, self.offered(), "the slot is offered again")
        note = session.message_ids.filtered(lambda m: "Online booking released" in m.body)
        self.assertEqual(len(note), 1)
        self.assertIn("missing: a saved card", note.body)
        mails = self.mails("was not confirmed")
        self.assertEqual(len(mails), 1)
        self.assertEqual(mails.recipient_ids, self.client_b)
        self.assertIn("/book", mails.body_html)
        self.assertFalse(self.stripe_calls)

        with self.mock_mail_gateway():
            self.assertFalse(self.release(40), "a released booking is not released twice")
        self.assertFalse(self.mails("was not confirmed"))

    def test_saving_a_card_in_time_confirms_the_booking(self):
        session = self.book_online(self.card_first)
        self._make_token(self.client_b)
        self.assertFalse(self.release(31))
        self.assertEqual(session.state, "scheduled")
        self.assertFalse(session.confirm_by, "confirmed: no deadline any more")
        self.assertNotIn(SLOT, self.offered())

    def test_no_deadline_when_nothing_is_asked_or_already_given(self):
        has_card = self.book_online(self.card_first, client=self.client)
        no_terms = self.book_online(self.policy_minute, start=SLOT + timedelta(hours=1))
        for session in has_card | no_terms:
            self.assertEqual(session.state, "scheduled")
            self.assertFalse(self.env["bookconnect.booking"]._booking_requirements(session))
            self.assertFalse(session.confirm_by)
        practice_booked = self.book(start=SLOT + timedelta(hours=2), client=self.client_b)
        practice_booked.policy_id = self.card_first
        self.assertFalse(practice_booked.booked_online)
        self.assertFalse(practice_booked.confirm_by)
        self.assertFalse(self.release(24 * 60))
        self.assertEqual((has_card | no_terms | practice_booked).mapped("state"), ["scheduled"] * 3)

    def test_the_deadline_is_never_after_the_start(self):
        self.company.write(
            {"bookconnect_booking_notice_hours": 0, "bookconnect_booking_confirm_minutes": 120}
        )
        soon = NOW.replace(hour=9)  # 3 hours after booking
        session = self.book_online(self.card_first, start=soon)
        self.assertEqual(session.confirm_by, NOW + timedelta(hours=2))
        later = self.book_online(self.card_first, start=soon + timedelta(hours=1))
        self.assertEqual(later.confirm_by, NOW + timedelta(hours=2))
        self.company.bookconnect_booking_confirm_minutes = 24 * 60
        capped = self.book_online(self.card_first, start=soon + timedelta(hours=2))
        self.assertEqual(capped.confirm_by, capped.start)

    def test_time_to_confirm_zero_keeps_bookings(self):
        self.company.bookconnect_booking_confirm_minutes = 0
        session = self.book_online(self.card_first)
        self.assertFalse(session.confirm_by)
        self.assertFalse(self.release(24 * 60))
        self.assertEqual(session.state, "scheduled")
        for value in (-1, 7 * 24 * 60 + 1):
            with self.subTest(value=value), self.assertRaises(ValidationError):
                self.company.bookconnect_booking_confirm_minutes = value

    def test_unpaid_advance_invoice_is_cancelled_with_a_credit_note(self):
        session = self.book_online(self.paid_ahead)
        invoice = session.invoice_id
        self.assertEqual((invoice.state, invoice.payment_state), ("posted", "not_paid"))
        self.assertEqual(self.env["bookconnect.booking"]._booking_requirements(session), ["prepay"])
        self.assertTrue(session.confirm_by)
        self.assertEqual(self.release(31), session)
        self.assertEqual(session.state, "cancelled")
        credit_note = invoice.reversal_move_ids
        self.assertEqual(credit_note.state, "posted")
        self.assertEqual(credit_note.amount_total, invoice.amount_total)
        self.assertEqual(invoice.payment_state, "reversed")
        self.assertFalse(self.calls("refunds"), "nothing was paid: nothing to refund")

    def test_a_payment_under_way_postpones_the_release(self):
        session = self.book_online(self.paid_ahead)
        invoice = session.invoice_id
        tx = (
            self.env["payment.transaction"]
            .sudo()
            .create(
                {
                    "provider_id": self.stripe.id,
                    "payment_method_id": self.card.id,
                    "amount": invoice.amount_total,
                    "currency_id": invoice.currency_id.id,
                    "partner_id": self.client_b.id,
                    "reference": "BC-RELEASE-TEST",
                    "invoice_ids": [(6, 0, invoice.ids)],
                    "state": "pending",
                }
            )
        )
        self.assertFalse(self.release(31), "the client is paying: the booking waits")
        self.assertEqual(session.state, "scheduled")
        tx.state = "error"
        self.assertEqual(self.release(36), session, "the payment failed: the slot is released")
        self.assertEqual(session.state, "cancelled")
