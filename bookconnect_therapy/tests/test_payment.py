from datetime import timedelta

import requests
from freezegun import freeze_time

from odoo import Command
from odoo.exceptions import ValidationError
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

    @mute_logger("odoo.addons.bookconnect_therapy.models.bookconnect_collector")
    def test_timeout_is_retried_with_the_same_idempotency_key_and_charges_once(self):
        self.stripe_answers["payment_intents"] = [requests.exceptions.ReadTimeout("read timed out")]
        session = self.held(35)
        with freeze_time(self.at(60)):
            session.action_end_session()
        tx = session.transaction_ids
        self.assertEqual(tx.state, "draft")
        self.assertEqual(tx.bookconnect_attempts, 1)
        self.assertEqual(tx.bookconnect_retry_at, self.at(65))
        self.assertEqual(session.invoice_id.payment_state, "not_paid")
        # a sweep or a second end changes nothing: the invoice is already being paid
        session._end_sessions()
        self.env["bookconnect.collector"]._collect(session.invoice_id)
        self.assertEqual(len(self.calls("payment_intents")), 1)
        with freeze_time(self.at(64)):
            self.env["bookconnect.collector"]._cron_retry()
        self.assertEqual(len(self.calls("payment_intents")), 1, "not due yet")
        with freeze_time(self.at(66)):
            self.env["bookconnect.collector"]._cron_retry()
        first, second = self.calls("payment_intents")
        self.assertEqual(first["idempotency_key"], second["idempotency_key"])
        self.assertEqual(session.transaction_ids, tx, "the same transaction, not a second one")
        self.assertEqual(tx.state, "done")
        # the job leaves the payment to Odoo's post-processing job, as for a webhook
        self.assertEqual(session.state, "invoiced")
        tx._post_process()  # what Odoo's job does for each completed payment
        self.assertEqual(session.state, "paid")
        self.assertEqual(len(tx.payment_id), 1)

    @mute_logger("odoo.addons.bookconnect_therapy.models.bookconnect_collector")
    def test_stripe_server_error_is_retried_not_treated_as_a_decline(self):
        self.stripe_answers["payment_intents"] = [
            {"error": {"type": "api_error", "message": "An unknown error occurred"}},
        ]
        session = self.held(35)
        session.action_end_session()
        tx = session.transaction_ids
        self.assertEqual((tx.state, tx.bookconnect_attempts), ("draft", 1))
        with freeze_time(tx.bookconnect_retry_at + timedelta(seconds=1)):
            self.env["bookconnect.collector"]._cron_retry()
        self.assertEqual(tx.state, "done")

    @mute_logger("odoo.addons.bookconnect_therapy.models.bookconnect_collector")
    def test_retries_give_up_with_a_pay_link(self):
        self.stripe_answers["payment_intents"] = [requests.exceptions.ConnectionError("down")] * 10
        session = self.held(35)
        session.action_end_session()
        tx = session.transaction_ids
        with self.mock_mail_gateway():
            for _attempt in range(5):
                with freeze_time(tx.bookconnect_retry_at + timedelta(seconds=1)):
                    self.env["bookconnect.collector"]._cron_retry()
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
class TestHolds(StripeSessionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.policy_hold = cls._make_policy(
            mode="minute", rate=1.0, collection="card", prepayment="hold", hold_hours_before=24
        )

    def place(self, session, when):
        with freeze_time(when):
            self.env["bookconnect.collector"]._cron_place_holds()
        return session._active_hold()

    def test_hold_is_placed_in_its_window_and_captured_for_less(self):
        session = self.book(policy_id=self.policy_hold.id, start=self.at(0), minutes=50)
        self.assertFalse(self.place(session, self.at(-25 * 60)), "too early")
        hold = self.place(session, self.at(-23 * 60))
        self.assertEqual(
            (hold.state, hold.amount, hold.bookconnect_purpose), ("authorized", 50.0, "hold")
        )
        self.assertEqual(self.calls("payment_intents")[0]["payload"]["capture_method"], "manual")
        self.external(session, "therapist", "joined", 0)
        self.external(session, "client", "joined", 0)
        self.external(session, "client", "left", 35)
        self.external(session, "therapist", "left", 35)
        session.action_end_session()
        [capture] = self.calls(f"payment_intents/{hold.provider_reference}/capture")
        self.assertEqual(capture["payload"]["amount_to_capture"], 3500)
        self.assertEqual(hold.state, "done")
        self.assertEqual((hold.amount, hold.bookconnect_held_amount), (35.0, 50.0))
        self.assertEqual(session.state, "paid")
        self.assertEqual(hold.payment_id.amount, 35.0)
        self.assertFalse(self.calls("payment_intents")[1:], "no second charge")
        self.assertIn("released", session.message_ids[0].body)

    def test_more_than_held_captures_the_hold_and_charges_the_difference(self):
        session = self.book(policy_id=self.policy_hold.id, start=self.at(0), minutes=30)
        hold = self.place(session, self.at(-60))
        self.external(session, "therapist", "joined", 0)
        self.external(session, "client", "joined", 0)
        self.external(session, "client", "left", 45)
        self.external(session, "therapist", "left", 45)
        session.action_end_session()
        capture = self.calls(f"payment_intents/{hold.provider_reference}/capture")
        self.assertEqual(len(capture), 1)
        self.assertNotIn("amount_to_capture", capture[0]["payload"])
        charges = session.transaction_ids.filtered(lambda t: t.bookconnect_purpose == "charge")
        self.assertEqual(charges.amount, 15.0)
        self.assertEqual(session.state, "paid")
        self.assertAlmostEqual(sum(session.transaction_ids.payment_id.mapped("amount")), 45.0)

    def test_cancelling_in_time_voids_the_hold(self):
        self.policy_hold.free_cancel_hours = 12
        session = self.book(policy_id=self.policy_hold.id, start=self.at(0), minutes=50)
        hold = self.place(session, self.at(-23 * 60))
        with freeze_time(self.at(-23 * 60)):
            session.with_user(self.client_user).action_client_cancel()
        self.assertEqual(session.state, "cancelled")
        self.assertEqual(hold.state, "cancel")
        self.assertTrue(self.calls(f"payment_intents/{hold.provider_reference}/cancel"))

    def test_holds_are_renewed_before_they_expire(self):
        session = self.book(policy_id=self.policy_hold.id, start=self.at(0), minutes=50)
        first = self.place(session, self.at(-23 * 60))
        self.assertEqual(first.state, "authorized")
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE payment_transaction SET create_date = %s WHERE id = %s",
            (self.at(-23 * 60), first.id),
        )
        first.invalidate_recordset(["create_date"])
        # the session moved six days later: the first hold would expire before it
        session.write({"start": self.at(6 * 24 * 60), "stop": self.at(6 * 24 * 60 + 50)})
        self.assertEqual(self.place(session, self.at(3 * 24 * 60)), first, "still fresh")
        second = self.place(session, self.at(-23 * 60) + timedelta(days=6, minutes=1))
        self.assertNotEqual(first, second)
        self.assertEqual(first.state, "cancel")
        self.assertEqual(second.state, "authorized")
        # and only one active hold after running again
        self.place(session, self.at(-23 * 60) + timedelta(days=6, minutes=2))
        self.assertEqual(
            len(session.transaction_ids.filtered(lambda t: t.state == "authorized")), 1
        )

    def test_holds_of_several_clients_are_placed_in_one_run(self):
        token_b = self._make_token(self.client_b)
        mine = self.book(policy_id=self.policy_hold.id, start=self.at(0), minutes=50)
        theirs = self.book(
            policy_id=self.policy_hold.id,
            start=self.at(0),
            minutes=50,
            therapist=self.therapist_b,
            client=self.client_b,
        )
        self.assertEqual(self.place(mine, self.at(-60)).token_id, self.token)
        hold_b = theirs._active_hold()
        self.assertEqual((hold_b.state, hold_b.token_id), ("authorized", token_b))

    def hold_then_meet(self, minutes):
        """A session with a card hold placed, then held for ``minutes``: (session, hold)."""
        session = self.book(policy_id=self.policy_hold.id, start=self.at(0), minutes=50)
        hold = self.place(session, self.at(-60))
        for role, kind, minute in [
            ("therapist", "joined", 0),
            ("client", "joined", 0),
            ("client", "left", minutes),
            ("therapist", "left", minutes),
        ]:
            self.external(session, role, kind, minute)
        return session, hold

    def captured(self, hold, cents):
        return {
            "id": hold.provider_reference,
            "status": "succeeded",
            "amount": 5000,
            "amount_received": cents,
            "payment_method": "pm_card_visa",
        }

    @mute_logger("odoo.addons.bookconnect_therapy.models.bookconnect_collector")
    def test_lost_answer_to_a_capture_is_looked_up_not_charged_again(self):
        """Stripe captured the hold but its answer was lost: Odoo asks Stripe and records the
        capture instead of charging the card a second time."""
        session, hold = self.hold_then_meet(35)
        intent = f"payment_intents/{hold.provider_reference}"
        self.stripe_answers[f"{intent}/capture"] = [
            requests.exceptions.ConnectionError("connection dropped")
        ]
        self.stripe_answers[intent] = [self.captured(hold, 3500)]
        session.action_end_session()
        self.assertEqual(len(self.calls("payment_intents")), 1, "only the hold: no new charge")
        self.assertEqual(session.state, "paid")
        self.assertEqual(
            (hold.state, hold.amount, hold.bookconnect_held_amount), ("done", 35.0, 50.0)
        )
        self.assertEqual(hold.payment_id.amount, 35.0)
        self.assertIn(session.invoice_id, hold.invoice_ids)

    @mute_logger("odoo.addons.bookconnect_therapy.models.bookconnect_collector")
    def test_capture_with_unknown_outcome_is_retried_and_never_charged_instead(self):
        session, hold = self.hold_then_meet(35)
        intent = f"payment_intents/{hold.provider_reference}"
        down = requests.exceptions.ConnectionError("Stripe unreachable")
        self.stripe_answers[f"{intent}/capture"] = [down]
        self.stripe_answers[intent] = [down]
        with freeze_time(self.at(60)):
            session.action_end_session()
        self.assertEqual(session.state, "invoiced")
        self.assertEqual(session.invoice_id.payment_state, "not_paid")
        self.assertEqual(hold.state, "authorized")
        self.assertIn(session.invoice_id, hold.invoice_ids)
        self.assertEqual(hold.bookconnect_retry_at, self.at(65))
        # Nothing else charges the invoice meanwhile: the sweep, a second end, a collection.
        session._end_sessions()
        self.env["bookconnect.collector"]._collect(session.invoice_id)
        self.assertEqual(len(self.calls("payment_intents")), 1, "only the hold")
        # The retry: Stripe refuses to capture twice and, asked, says it was captured.
        self.stripe_answers[f"{intent}/capture"] = [
            ValidationError("Stripe: This PaymentIntent has a status of succeeded")
        ]
        self.stripe_answers[intent] = [self.captured(hold, 3500)]
        with freeze_time(self.at(66)):
            self.env["bookconnect.collector"]._cron_retry()
        self.assertEqual(session.state, "paid")
        self.assertEqual((hold.state, hold.amount), ("done", 35.0))
        self.assertFalse(hold.bookconnect_retry_at)
        self.assertEqual(len(self.calls("payment_intents")), 1, "never charged instead")

    def test_no_card_no_hold_but_a_note(self):
        self.token.active = False
        session = self.book(policy_id=self.policy_hold.id, start=self.at(0), minutes=50)
        self.assertFalse(self.place(session, self.at(-60)))
        self.assertIn("no saved card", session.message_ids[0].body)
        self.assertEqual(self.env["bookconnect.booking"]._booking_requirements(session), ["card"])


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
