from datetime import datetime, timedelta

from lxml import etree

from odoo import fields
from odoo.exceptions import AccessError, ValidationError
from odoo.tests import Form, tagged
from odoo.tools import format_date

from .common import SessionCase, StripeSessionCase
from .web_client import WebClient


@tagged("post_install", "-at_install", "bookconnect")
class TestSessionBillingStatus(StripeSessionCase):
    """Therapists and practice managers see where a session's money stands through fields
    they may read, without any right on invoices or payments."""

    def seen_by(self, user, session, *names):
        self.env.invalidate_all()
        [values] = session.with_user(user).read(list(names))
        return values

    def today(self):
        return format_date(self.env, fields.Date.today(), date_format="d MMM")

    def test_charged_to_the_saved_card(self):
        session = self.held(35)
        session.action_end_session()
        seen = self.seen_by(
            self.therapist, session, "invoice_name", "payment_state", "amount", "billing_status"
        )
        self.assertEqual(seen["invoice_name"], session.invoice_id.name)
        self.assertIn(seen["payment_state"], ("paid", "in_payment"))
        self.assertEqual(seen["amount"], 35.0)
        self.assertEqual(seen["billing_status"], f"Charged to the saved card on {self.today()}")
        # ... while the invoice and its payment stay out of the therapist's reach
        with self.assertRaises(AccessError):
            session.invoice_id.with_user(self.therapist).read(["name"])
        with self.assertRaises(AccessError):
            session.transaction_ids.with_user(self.therapist).read(["reference"])

    def test_declined_card(self):
        self.stripe_answers["payment_intents"] = {
            "error": {"code": "card_declined", "message": "Your card was declined.", "type": "x"}
        }
        session = self.held(35)
        session.action_end_session()
        self.assertEqual(
            self.seen_by(self.therapist, session, "billing_status")["billing_status"],
            "Card not charged: Your card was declined. The client was sent a link to pay.",
        )

    def test_no_usable_card_and_portal_payment(self):
        self.token.active = False
        no_card = self.held(35)
        no_card.action_end_session()
        portal = self.held(20, policy_id=self.policy(mode="minute", rate=1.0).id)
        portal.policy_id.collection = "portal"
        portal.action_end_session()
        self.assertEqual(
            self.seen_by(self.manager, no_card, "billing_status")["billing_status"],
            "Not charged (no usable saved card): the client was sent a link to pay",
        )
        self.assertEqual(
            self.seen_by(self.manager, portal, "billing_status")["billing_status"],
            "Waiting for the client to pay online",
        )

    def test_before_the_session_and_with_a_card_hold(self):
        scheduled = self.book(start=self.at(0))
        self.assertEqual(
            self.seen_by(self.therapist, scheduled, "billing_status")["billing_status"],
            "Invoiced when the session ends",
        )
        hold_policy = self.policy(mode="minute", rate=1.0, prepayment="hold")
        held = self.book(start=self.at(0), minutes=50, policy_id=hold_policy.id)
        self.env["bookconnect.card.hold"]._place(held)
        self.assertEqual(
            self.seen_by(self.therapist, held, "billing_status")["billing_status"],
            f"{held.currency_id.format(50.0)} held on the card",
        )

    def test_fees_in_review_waived_and_refunds(self):
        fees = self.policy(mode="session", rate=80, no_show_fee_kind="fixed", no_show_fee_fixed=40)
        missed = self.book(start=fields.Datetime.now() - timedelta(hours=1), policy_id=fees.id)
        missed.with_user(self.therapist).action_mark_no_show()
        status = self.seen_by(self.therapist, missed, "billing_status")["billing_status"]
        self.assertTrue(status.startswith(f"{missed.currency_id.format(40.0)} fee in review"))
        missed.with_user(self.therapist)._waive_fee("Client was in hospital")
        self.assertEqual(
            self.seen_by(self.therapist, missed, "billing_status")["billing_status"],
            "Fee waived: Client was in hospital",
        )
        session = self.held(35)
        session.action_end_session()
        session.with_user(self.manager)._refund(10.0, "Call cut short")
        self.assertEqual(
            self.seen_by(self.manager, session, "billing_status")["billing_status"],
            f"Charged to the saved card on {self.today()}; "
            f"{session.currency_id.format(10.0)} refunded",
        )

    def test_refund_wizard_shows_the_credit_note_only_to_those_who_may_read_it(self):
        invoicing = self.env.ref("account.group_account_invoice")
        invoicing_manager = self._make_user("Ivy Invoicing", "ivy", [self.group_manager, invoicing])
        for user, shows_credit_note in ((self.manager, False), (invoicing_manager, True)):
            session = self.held(35)
            session.action_end_session()
            wizard = (
                self.env["bookconnect.session.refund"]
                .with_user(user)
                .create({"session_id": session.id, "reason": "Call cut short"})
            )
            self.assertEqual(wizard.amount, 35.0)
            action = wizard.action_refund()
            self.assertEqual(action["type"] == "ir.actions.act_window", shows_credit_note)
            self.assertIn(
                "refunded", self.seen_by(user, session, "billing_status")["billing_status"]
            )


@tagged("post_install", "-at_install", "bookconnect")
class TestSessionForm(SessionCase):
    def form_arch(self, user):
        views = self.env["bookconnect.therapy.session"].with_user(user).get_views([(False, "form")])
        return etree.fromstring(views["views"]["form"]["arch"])

    def test_end_follows_the_start_and_the_policy_length(self):
        self.policy_session.session_minutes = 45
        start = datetime(2026, 12, 7, 9, 0)
        form = Form(self.env["bookconnect.therapy.session"].with_user(self.therapist))
        form.partner_id = self.client
        form.start = start
        self.assertEqual(form.stop, start + timedelta(minutes=50))  # the company's policy
        form.policy_id = self.policy_session
        self.assertEqual(form.stop, start + timedelta(minutes=45))
        form.start = start + timedelta(hours=2)
        self.assertEqual(form.stop, start + timedelta(hours=2, minutes=45))
        session = form.save()
        self.assertEqual(session.duration, 45)
        # a saved session keeps its end when its start moves
        with Form(session.with_user(self.therapist)) as saved:
            saved.start = start + timedelta(hours=2, minutes=15)
            self.assertEqual(
                fields.Datetime.to_datetime(saved.stop), start + timedelta(hours=2, minutes=45)
            )
        # created without an end, over RPC or by code
        bare = self.env["bookconnect.therapy.session"].create(
            {"partner_id": self.client.id, "therapist_id": self.therapist.id, "start": start}
        )
        self.assertEqual(bare.stop, start + timedelta(minutes=50))

    def test_without_a_policy_the_online_booking_length_applies(self):
        self.company.bookconnect_policy_id = False
        self.company.bookconnect_booking_slot_minutes = 40
        form = Form(self.env["bookconnect.therapy.session"].with_user(self.therapist))
        form.partner_id = self.client
        form.start = datetime(2026, 12, 7, 9, 0)
        self.assertFalse(form.policy_id)
        self.assertEqual(form.stop, datetime(2026, 12, 7, 9, 40))

    def test_session_length_is_checked(self):
        for minutes in (0, 4, 721):
            with (
                self.subTest(minutes=minutes),
                self.assertRaisesRegex(ValidationError, "5 to 720 minutes"),
            ):
                self.policy_session.session_minutes = minutes

    def test_no_action_on_a_session_not_saved_yet(self):
        client = WebClient(self.env, self.therapist, "therapist")
        arch = self.form_arch(self.therapist)
        buttons = arch.xpath("//header/button")
        self.assertGreater(len(buttons), 5)
        new = {"id": False, "state": "scheduled", "channel": "video", "chat_open": False}
        new.update(videocall_url="https://x", fee_state=False)
        self.assertFalse([b.get("name") for b in buttons if client._visible(b, new)])
        saved = dict(new, id=1)
        self.assertEqual(
            {b.get("name") for b in buttons if client._visible(b, saved)},
            {"action_join_call", "action_end_session", "action_mark_no_show", "action_cancel"},
        )

    def test_the_form_shows_payments_only_to_those_who_may_read_them(self):
        invoicing = self.env.ref("account.group_account_invoice")
        for user, may in (
            (self.therapist, False),
            (self.manager, False),
            (self._make_user("Ivy Invoicing", "ivy", [self.group_manager, invoicing]), True),
        ):
            arch = self.form_arch(user)
            names = {
                node.get("name")
                for node in arch.iter("field")
                if node.get("invisible") not in ("True", "1")
            }
            self.assertTrue({"billing_status", "payment_state", "amount"} <= names)
            self.assertEqual("transaction_ids" in names, may, user.name)
            self.assertEqual("invoice_id" in names, may, user.name)
            self.assertEqual("invoice_name" in names, not may, user.name)

    def test_joining_opens_the_sessions_call(self):
        session = self.book(start=fields.Datetime.now() + timedelta(minutes=5))
        action = session.with_user(self.therapist).action_join_call()
        self.assertEqual(action["url"], session.videocall_url)
        self.assertIn("/calendar/join_videocall/", action["url"])
