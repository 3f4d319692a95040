from datetime import timedelta

import requests
from freezegun import freeze_time

from odoo import Command
from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.mail.tests.common import MailCase

from .common import StripeSessionCase


@tagged("post_install", "-at_install", "bookconnect")
class TestCharge(StripeSessionCase, MailCase):
    def test_charge_on_posting_pays_reconciles_and_sends_a_receipt(self):
        session = self.held(35)
        with self.mock_mail_gateway():
            session.action_end_session()
        invoice = session.invoice_id
        tx = session.transaction_ids
        self.assertEqual(len(tx), 1)
        self.assertEqual(
            (tx.operation, tx.bookconnect_purpose, tx.state), ("offline", "charge", "done")
        )
        self.assertEqual(tx.token_id, self.token)
        self.assertEqual(tx.invoice_ids, invoice)
        self.assertAlmostEqual(tx.amount, 35.0)
        [call] = self.calls("payment_intents")
        self.assertEqual(call["payload"]["amount"], 3500)
        self.assertEqual(call["payload"]["off_session"], True)
        self.assertTrue(call["idempotency_key"])
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        self.assertEqual(session.state, "paid")
        self.assertTrue(tx.payment_id)
        self.assertEqual(tx.payment_id.partner_id, self.client)
        receipts = self.mails("payment received")
        self.assertEqual(len(receipts), 1)
        self.assertEqual(receipts.recipient_ids, self.client)
        self.assertIn(invoice.name, receipts.body_html)
        self.assertTrue(tx.bookconnect_receipt_sent)

    def test_one_run_charges_the_cards_of_several_clients(self):
        """The sweep ends the sessions of different clients together: each client's own card
        is charged once (Odoo checks a new transaction's token as if it were alone)."""
        token_b = self._make_token(self.client_b)
        mine = self.held(30)
        theirs = self.held(20, therapist=self.therapist_b, client=self.client_b)
        (mine | theirs)._end_sessions(automatic=True)
        self.assertEqual((mine.state, theirs.state), ("paid", "paid"))
        self.assertEqual(mine.transaction_ids.token_id, self.token)
        self.assertEqual(theirs.transaction_ids.token_id, token_b)
        self.assertEqual(
            sorted(c["payload"]["customer"] for c in self.calls("payment_intents")),
            ["cus_client", "cus_client_b"],
        )

    def test_paying_a_card_policy_invoice_online_saves_the_card(self):
        self.token.active = False
        session = self.held(35)
        session.action_end_session()
        invoice = session.invoice_id
        self.assertEqual(invoice.payment_state, "not_paid")

        def pay_online(invoice, reference):
            return self.env["payment.transaction"].create(
                {
                    "provider_id": self.stripe.id,
                    "payment_method_id": self.card.id,
                    "reference": reference,
                    "amount": invoice.amount_residual,
                    "currency_id": invoice.currency_id.id,
                    "partner_id": self.client.id,
                    "operation": "online_direct",
                    "invoice_ids": [Command.set(invoice.ids)],
                }
            )

        online = pay_online(invoice, "ONLINE-1")
        self.assertTrue(online.tokenize, "the card paid with is saved for the next sessions")
        portal = self.policy(mode="minute", rate=1.0, collection="portal")
        other = self.held(10, policy_id=portal.id)
        other.action_end_session()
        self.assertFalse(pay_online(other.invoice_id, "ONLINE-2").tokenize)

    def test_portal_policy_is_not_charged(self):
        portal = self.policy(mode="minute", rate=1.0, collection="portal")
        session = self.held(20, policy_id=portal.id)
        session.action_end_session()
        self.assertFalse(self.stripe_calls)
        self.assertEqual(session.invoice_id.payment_state, "not_paid")

    def test_declined_card_leaves_the_invoice_open_and_sends_the_pay_link(self):
        self.stripe_answers["payment_intents"] = {
            "error": {
                "code": "card_declined",
                "message": "Your card was declined.",
                "type": "card_error",
            }
        }
        session = self.held(35)
        with self.mock_mail_gateway():
            session.action_end_session()
        tx = session.transaction_ids
        self.assertEqual(tx.state, "error")
        self.assertEqual(session.invoice_id.payment_state, "not_paid")
        self.assertEqual(session.state, "invoiced")
        self.assertIn("declined", session.message_ids[0].body)
        mail = self.mails("pay invoice")
        self.assertEqual(len(mail), 1)
        self.assertEqual(mail.recipient_ids, self.client)
        self.assertIn("access_token=", mail.body_html)
        self.assertIn("declined", mail.body_html)

    def test_3d_secure_needed_ends_in_a_pay_link(self):
        self.stripe_answers["payment_intents"] = {"id": "pi_3ds", "status": "requires_action"}
        session = self.held(35)
        with self.mock_mail_gateway():
            session.action_end_session()
        tx = session.transaction_ids
        self.assertEqual(tx.state, "error")
        self.assertIn("3-D Secure", tx.state_message)
        self.assertEqual(session.invoice_id.payment_state, "not_paid")
        self.assertTrue(self.mails("pay invoice"))

    @mute_logger("odoo.addons.bookconnect_therapy.models.bookconnect_payment_engine")
    def test_timeout_is_retried_with_the_same_idempotency_key_and_charges_once(self):
        self.stripe_answers["payment_intents"] = [requests.exceptions.ReadTimeout("read timed out")]
        session = self.held(35)
        with freeze_time(self.at(60)):
            session.action_end_session()
        tx = session.transaction_ids
        self.assertEqual(tx.state, "draft")
        job = self.payment_jobs()
        self.assertEqual(len(job), 1, "the next attempt is a payment job")
        self.assertEqual((job.eta, job.channel), (self.at(65), "root.stripe"))
        self.assertEqual(session.invoice_id.payment_state, "not_paid")
        # a sweep or a second end changes nothing: the invoice is already being paid
        session._end_sessions()
        self.env["bookconnect.collector"]._collect(session.invoice_id)
        self.assertEqual(len(self.calls("payment_intents")), 1)
        self.assertEqual(self.payment_jobs(), job, "queued once")
        with freeze_time(self.at(64)):
            self.run_payment_jobs()
        self.assertEqual(len(self.calls("payment_intents")), 1, "not due yet")
        with freeze_time(self.at(66)):
            self.run_payment_jobs()
        self.assertEqual(job.state, "done")
        first, second = self.calls("payment_intents")
        self.assertEqual(first["idempotency_key"], second["idempotency_key"])
        self.assertEqual(session.transaction_ids, tx, "the same transaction, not a second one")
        self.assertEqual(tx.state, "done")
        # the job leaves the payment to Odoo's post-processing job, as for a webhook
        self.assertEqual(session.state, "invoiced")
        tx._post_process()  # what Odoo's job does for each completed payment
        self.assertEqual(session.state, "paid")
        self.assertEqual(len(tx.payment_id), 1)

    @mute_logger("odoo.addons.bookconnect_therapy.models.bookconnect_payment_engine")
    def test_stripe_server_error_is_retried_not_treated_as_a_decline(self):
        self.stripe_answers["payment_intents"] = [
            {"error": {"type": "api_error", "message": "An unknown error occurred"}},
        ]
        session = self.held(35)
        session.action_end_session()
        tx = session.transaction_ids
        self.assertEqual((tx.state, len(self.payment_jobs())), ("draft", 1))
        with freeze_time(self.payment_jobs().eta + timedelta(seconds=1)):
            self.run_payment_jobs()
        self.assertEqual(tx.state, "done")

    @mute_logger("odoo.addons.bookconnect_therapy.models.bookconnect_payment_engine")
    def test_retries_give_up_with_a_pay_link(self):
        self.stripe_answers["payment_intents"] = [requests.exceptions.ConnectionError("down")] * 10
        session = self.held(35)
        session.action_end_session()
        tx = session.transaction_ids
        with self.mock_mail_gateway():
            for _attempt in range(5):
                with freeze_time(self.payment_jobs().eta + timedelta(seconds=1)):
                    self.run_payment_jobs()
                if tx.state != "draft":
                    break
        self.assertEqual(tx.state, "error")
        self.assertIn("Gave up", tx.state_message)
        self.assertEqual(len(self.calls("payment_intents")), 5)
        self.assertTrue(self.mails("pay invoice"))

    def test_no_webhook_secret_refuses_to_charge(self):
        self.stripe.stripe_webhook_secret = False
        session = self.held(35)
        with self.mock_mail_gateway():
            session.action_end_session()
        self.assertFalse(self.stripe_calls)
        self.assertFalse(session.transaction_ids)
        self.assertIn("no webhook secret", session.message_ids[0].body)
        self.assertTrue(self.mails("pay invoice"))

    def test_no_saved_card_sends_the_pay_link(self):
        self.token.active = False
        session = self.held(35)
        with self.mock_mail_gateway():
            session.action_end_session()
        self.assertFalse(self.stripe_calls)
        self.assertIn("no saved card", session.message_ids[0].body)

    def test_small_amounts_wait_for_the_next_charge(self):
        floor = self.policy(mode="minute", rate=0.65, collection="card", charge_floor=5.0)
        small = self.held(3, policy_id=floor.id)
        small.action_end_session()
        self.assertFalse(self.stripe_calls)
        self.assertTrue(small.invoice_id.bookconnect_charge_deferred)
        bigger = self.held(10, policy_id=floor.id)
        bigger.action_end_session()
        [call] = self.calls("payment_intents")
        self.assertEqual(call["payload"]["amount"], 195 + 650)
        tx = bigger.transaction_ids
        self.assertEqual(tx.invoice_ids, small.invoice_id | bigger.invoice_id)
        self.assertEqual({small.state, bigger.state}, {"paid"})
        self.assertFalse(small.invoice_id.bookconnect_charge_deferred)

    def test_below_stripe_minimum_waits_too(self):
        tiny = self.policy(mode="minute", rate=0.10, collection="card")
        session = self.held(2, policy_id=tiny.id)  # 0.20 < Stripe's minimum
        session.action_end_session()
        self.assertFalse(self.stripe_calls)
        self.assertTrue(session.invoice_id.bookconnect_charge_deferred)


@tagged("post_install", "-at_install", "bookconnect")
class TestPayUpFrontAndRefunds(StripeSessionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.policy_full = cls._make_policy(
            mode="minute", rate=1.0, collection="card", prepayment="full"
        )

    def held_up_front(self, minutes_together, booked=50):
        session = self.book(policy_id=self.policy_full.id, minutes=booked)
        for role, kind, minute in [
            ("therapist", "joined", 0),
            ("client", "joined", 0),
            ("client", "left", minutes_together),
            ("therapist", "left", minutes_together),
        ]:
            self.external(session, role, kind, minute)
        return session

    def test_booked_price_is_invoiced_and_charged_at_booking(self):
        session = self.book(policy_id=self.policy_full.id, minutes=50)
        invoice = session.invoice_id
        self.assertEqual(invoice.state, "posted")
        self.assertAlmostEqual(invoice.amount_total, 50.0)
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        self.assertEqual(session.state, "scheduled")
        self.assertEqual(self.env["bookconnect.booking"]._booking_requirements(session), [])

    def test_unpaid_up_front_is_a_booking_requirement(self):
        self.token.active = False
        session = self.book(policy_id=self.policy_full.id, minutes=50)
        self.assertEqual(session.invoice_id.payment_state, "not_paid")
        self.assertEqual(self.env["bookconnect.booking"]._booking_requirements(session), ["prepay"])

    def test_shorter_session_is_refunded_the_difference(self):
        session = self.held_up_front(30)
        session.action_end_session()
        credit_note = session.invoice_ids.filtered(lambda m: m.move_type == "out_refund")
        self.assertAlmostEqual(credit_note.amount_total, 20.0)
        self.assertEqual(credit_note.state, "posted")
        [refund] = self.calls("refunds")
        self.assertEqual(refund["payload"]["amount"], 2000)
        refund_tx = session.transaction_ids.filtered(lambda t: t.operation == "refund")
        self.assertEqual((refund_tx.state, refund_tx.amount), ("done", -20.0))
        self.assertIn(credit_note.payment_state, ("paid", "in_payment"))
        self.assertEqual(session.state, "paid")
        self.assertEqual(session.amount, 30.0)

    def test_longer_session_is_charged_the_extra(self):
        session = self.held_up_front(60)
        session.action_end_session()
        extra = session.invoice_ids.filtered(
            lambda m: m.bookconnect_charge_ids.kind == "difference"
        )
        self.assertAlmostEqual(extra.amount_total, 10.0)
        self.assertIn(extra.payment_state, ("paid", "in_payment"))
        self.assertEqual(len(self.calls("payment_intents")), 2)

    def test_cancelling_in_time_refunds_in_full(self):
        session = self.book(policy_id=self.policy_full.id, start=self.at(48 * 60), minutes=50)
        with freeze_time(self.at(0)):
            session.with_user(self.client_user).action_client_cancel()
        self.assertEqual(session.state, "cancelled")
        credit_note = session.invoice_ids.filtered(lambda m: m.move_type == "out_refund")
        self.assertAlmostEqual(credit_note.amount_total, 50.0)
        self.assertEqual(self.calls("refunds")[0]["payload"]["amount"], 5000)

    def test_refund_a_session_partially_then_fully(self):
        session = self.held(40)
        session.action_end_session()
        self.assertEqual(session.state, "paid")
        session.with_user(self.therapist)._refund(10.0, "Audio trouble for ten minutes")
        credit_notes = session.invoice_ids.filtered(lambda m: m.move_type == "out_refund")
        self.assertAlmostEqual(credit_notes.amount_total, 10.0)
        self.assertEqual(self.calls("refunds")[0]["payload"]["amount"], 1000)
        refund_payment = session.transaction_ids.filtered(
            lambda t: t.operation == "refund"
        ).payment_id
        self.assertEqual(refund_payment.payment_type, "outbound")
        self.assertIn(credit_notes.payment_state, ("paid", "in_payment"))
        with self.assertRaisesRegex(Exception, "At most"):
            session.with_user(self.therapist)._refund(35.0, "too much")
        session.with_user(self.therapist)._refund(30.0, "The rest")
        self.assertEqual(self.calls("refunds")[1]["payload"]["amount"], 3000)
        self.assertIn("refunded", session.message_ids[0].body)
        with self.assertRaisesRegex(Exception, "Say why"):
            session.with_user(self.therapist)._refund(1.0, "")

    def test_refund_wizard(self):
        session = self.held(40)
        session.action_end_session()
        action = session.with_user(self.therapist).action_refund()
        wizard = (
            self.env[action["res_model"]]
            .with_user(self.therapist)
            .with_context(**action["context"])
            .create({"reason": "Goodwill"})
        )
        self.assertAlmostEqual(wizard.amount, 40.0)
        result = wizard.action_refund()
        # the therapist may not read invoices: the wizard closes on the session
        self.assertEqual(result["type"], "ir.actions.act_window_close")
        credit_note = session.invoice_ids.filtered(lambda m: m.move_type == "out_refund")
        self.assertEqual(credit_note.move_type, "out_refund")
        self.assertEqual(credit_note.reversed_entry_id, session.invoice_id)
