from datetime import timedelta

import requests
from freezegun import freeze_time

from odoo.exceptions import ValidationError
from odoo.tests import tagged
from odoo.tools import mute_logger

from .common import StripeSessionCase


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
            self.env["bookconnect.card.hold"]._cron_place_holds()
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

    def test_in_jobs_the_capture_then_the_difference_are_sent_after_the_session_ends(self):
        """As in production: ending the session sends nothing itself; the capture's job
        books the capture, then the charge of what the hold did not cover is a job too."""
        session = self.book(policy_id=self.policy_hold.id, start=self.at(0), minutes=30)
        hold = self.place(session, self.at(-60))
        for role, kind, minute in [
            ("therapist", "joined", 0),
            ("client", "joined", 0),
            ("client", "left", 45),
            ("therapist", "left", 45),
        ]:
            self.external(session, role, kind, minute)
        session.with_context(queue_job__no_delay=False).action_end_session()
        self.assertFalse(self.calls(f"payment_intents/{hold.provider_reference}/capture"))
        self.assertEqual(session.state, "invoiced")
        self.run_payment_jobs()  # the capture, which queues the charge of the difference
        self.assertEqual((hold.state, hold.amount), ("done", 30.0))
        self.assertEqual(session.invoice_id.amount_residual, 15.0)
        [charge] = session.transaction_ids.filtered(lambda t: t.bookconnect_purpose == "charge")
        self.assertEqual((charge.state, charge.amount), ("draft", 15.0))
        self.run_payment_jobs()
        charge._post_process()  # what Odoo's job does for each completed payment
        self.assertEqual(session.state, "paid")
        self.assertEqual(len(self.calls("payment_intents")), 2, "the hold and the difference")

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

    @mute_logger("odoo.addons.bookconnect_therapy.models.bookconnect_payment_engine")
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

    @mute_logger("odoo.addons.bookconnect_therapy.models.bookconnect_payment_engine")
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
        self.assertEqual(self.payment_jobs().eta, self.at(65))
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
            self.run_payment_jobs()
        hold._post_process()  # what Odoo's job does for each completed payment
        self.assertEqual(session.state, "paid")
        self.assertEqual((hold.state, hold.amount), ("done", 35.0))
        self.assertFalse(self.payment_jobs())
        self.assertEqual(len(self.calls("payment_intents")), 1, "never charged instead")

    def test_no_card_no_hold_but_a_note(self):
        self.token.active = False
        session = self.book(policy_id=self.policy_hold.id, start=self.at(0), minutes=50)
        self.assertFalse(self.place(session, self.at(-60)))
        self.assertIn("no saved card", session.message_ids[0].body)
        self.assertEqual(self.env["bookconnect.booking"]._booking_requirements(session), ["card"])

    def test_renewals_void_only_the_holds_placed_again_in_the_same_batch(self):
        """A batch that places only some of the holds due for renewal lets go of only those:
        the others keep holding until a later batch places theirs."""
        token_b = self._make_token(self.client_b)
        sessions = self.book(policy_id=self.policy_hold.id, start=self.at(0), minutes=50)
        sessions |= self.book(
            policy_id=self.policy_hold.id,
            start=self.at(0),
            minutes=50,
            therapist=self.therapist_b,
            client=self.client_b,
        )
        firsts = [self.place(session, self.at(-23 * 60)) for session in sessions]
        self.assertEqual([hold.state for hold in firsts], ["authorized", "authorized"])
        self.assertEqual(firsts[1].token_id, token_b)
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE payment_transaction SET create_date = %s WHERE id IN %s",
            (self.at(-23 * 60), tuple(hold.id for hold in firsts)),
        )
        for hold in firsts:
            hold.invalidate_recordset(["create_date"])
        sessions.write({"start": self.at(6 * 24 * 60), "stop": self.at(6 * 24 * 60 + 50)})
        with freeze_time(self.at(-23 * 60) + timedelta(days=6, minutes=1)):
            self.env["bookconnect.card.hold"]._cron_place_holds(batch_size=1)
        renewed = [session._active_hold() for session in sessions]
        states = sorted(hold.state for hold in firsts)
        self.assertEqual(states, ["authorized", "cancel"], "one renewed, one still holding")
        self.assertEqual(
            [bool(hold) and hold.state for hold in renewed], ["authorized", "authorized"]
        )
        self.assertEqual(len(self.calls("payment_intents")), 3, "two holds, one renewal")
