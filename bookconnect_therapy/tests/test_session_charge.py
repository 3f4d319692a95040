from datetime import timedelta
from unittest.mock import patch

from freezegun import freeze_time

from odoo.exceptions import AccessError, UserError
from odoo.tests import tagged

from .common import StripeSessionCase


@tagged("post_install", "-at_install", "bookconnect")
class TestSessionCharges(StripeSessionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.policy_full = cls._make_policy(
            mode="minute", rate=1.0, collection="card", prepayment="full"
        )
        cls.policy_fees = cls._make_policy(
            mode="session",
            rate=90.0,
            collection="card",
            free_cancel_hours=24,
            late_fee_kind="fixed",
            late_fee_fixed=20.0,
            review_hours=24,
        )

    def late_cancelled(self):
        session = self.book(policy_id=self.policy_fees.id, start=self.at(0))
        with freeze_time(self.at(-60)):
            session.with_user(self.client_user).action_client_cancel()
        return session

    def charge_fees_at(self, moment):
        with freeze_time(moment):
            self.env["bookconnect.fee.manager"]._cron_charge_fees()

    def test_each_invoice_line_bills_one_charge(self):
        session = self.held(35, policy_id=self.policy_card.id)
        session.action_end_session()
        [charge] = session.charge_ids
        self.assertEqual((charge.kind, charge.state), ("usage", "paid"))
        self.assertEqual(charge.move_id, session.invoice_id)
        self.assertEqual(charge.move_line_id.move_id, session.invoice_id)
        self.assertEqual(session.invoice_id.invoice_line_ids.bookconnect_charge_id, charge)
        self.assertAlmostEqual(charge.amount, session.invoice_id.amount_untaxed)
        self.assertTrue(session.invoice_id.bookconnect_is_session)

    def test_a_charge_is_invoiced_once(self):
        session = self.held(35, policy_id=self.policy_card.id)
        session.action_end_session()
        charge = session.charge_ids
        self.assertFalse(charge._create_invoices())
        charge.state = "to_invoice"
        # Another worker holds the charge: it is skipped, not billed a second time.
        with patch.object(type(charge), "_lock_in_states", lambda self, states: self.browse()):
            self.assertFalse(charge._create_invoices())
        self.assertEqual(len(session.invoice_ids), 1)

    def test_creating_a_session_bills_nothing_confirming_it_bills_the_booked_price(self):
        Session = self.env["bookconnect.therapy.session"]
        session = Session.create(
            {
                "therapist_id": self.therapist.id,
                "partner_id": self.client.id,
                "policy_id": self.policy_full.id,
                "start": self.T0,
                "stop": self.T0 + timedelta(minutes=50),
            }
        )
        self.assertFalse(session.charge_ids)
        self.assertFalse(session.invoice_ids)
        session.with_user(self.therapist).action_confirm()
        session.with_user(self.therapist).action_confirm()
        [booked] = session.charge_ids
        self.assertEqual((booked.kind, booked.amount), ("booked", 50.0))
        self.assertEqual(session.invoice_id, booked.move_id)
        self.assertIn(session.invoice_id.payment_state, ("paid", "in_payment"))
        self.assertEqual(booked.state, "paid")

    def test_a_session_saved_new_in_the_back_office_is_confirmed(self):
        Session = self.env["bookconnect.therapy.session"].with_user(self.therapist)
        [saved] = Session.web_save(
            {
                "therapist_id": self.therapist.id,
                "partner_id": self.client.id,
                "policy_id": self.policy_full.id,
                "start": self.T0,
                "stop": self.T0 + timedelta(minutes=50),
            },
            {"invoice_id": {}},
        )
        session = Session.browse(saved["id"])
        self.assertEqual(session.charge_ids.kind, "booked")
        self.assertEqual(saved["invoice_id"], session.invoice_id.id)

    def test_a_negative_difference_is_a_credit_note_of_the_booked_invoice(self):
        session = self.book(policy_id=self.policy_full.id, minutes=50)
        booked_invoice = session.invoice_id
        for role, kind, minute in [
            ("therapist", "joined", 0),
            ("client", "joined", 0),
            ("client", "left", 30),
            ("therapist", "left", 30),
        ]:
            self.external(session, role, kind, minute)
        session.action_end_session()
        difference = session.charge_ids.filtered(lambda c: c.kind == "difference")
        self.assertAlmostEqual(difference.amount, -20.0)
        credit_note = difference.move_id
        self.assertEqual(credit_note.move_type, "out_refund")
        self.assertEqual(credit_note.reversed_entry_id, booked_invoice)
        self.assertAlmostEqual(credit_note.amount_total, 20.0)
        self.assertEqual(session.invoice_id, booked_invoice)

    def test_a_refund_is_a_charge_billed_by_a_credit_note(self):
        session = self.held(35, policy_id=self.policy_card.id)
        session.action_end_session()
        credit_note = session.with_user(self.therapist)._refund(5.0, "Sound cut out")
        refund = session.charge_ids.filtered(lambda c: c.kind == "refund")
        self.assertEqual(refund.move_id, credit_note)
        self.assertEqual(credit_note.reversed_entry_id, session.invoice_id)
        self.assertEqual(credit_note.ref, "Sound cut out")
        # Refunds are the one kind a session may have several of.
        session.with_user(self.therapist)._refund(5.0, "And again")
        self.assertEqual(len(session.charge_ids.filtered(lambda c: c.kind == "refund")), 2)

    def test_a_fee_waits_in_review_then_is_invoiced(self):
        session = self.late_cancelled()
        fee = session.fee_charge_id
        self.assertEqual((fee.kind, fee.state, fee.amount), ("late_cancel", "review", 20.0))
        self.assertEqual(fee.due_at, self.at(-60) + timedelta(hours=24))
        self.charge_fees_at(fee.due_at - timedelta(minutes=1))
        self.assertEqual(fee.state, "review")
        self.assertFalse(session.invoice_ids)
        self.charge_fees_at(fee.due_at + timedelta(minutes=1))
        self.assertEqual(fee.state, "paid")
        self.assertEqual(fee.move_line_id.move_id, session.invoice_ids)
        self.assertEqual(session.fee_state, "charged")

    def test_a_waived_fee_is_never_invoiced(self):
        session = self.late_cancelled()
        session.with_user(self.therapist)._waive_fee("Snowstorm")
        fee = session.fee_charge_id
        self.assertEqual((fee.state, fee.waiver_reason), ("waived", "Snowstorm"))
        with self.assertRaises(UserError):
            session.with_user(self.therapist)._waive_fee("Twice")
        self.charge_fees_at(self.at(48 * 60))
        self.assertEqual(fee.state, "waived")
        self.assertFalse(session.invoice_ids)

    def test_only_the_client_cancels_as_the_client(self):
        session = self.book(policy_id=self.policy_fees.id, start=self.at(0))
        with freeze_time(self.at(-60)), self.assertRaises(AccessError):
            session.with_user(self.therapist).action_client_cancel()
        self.assertEqual(session.state, "scheduled")
        self.assertFalse(session.charge_ids)

    def test_correcting_a_session_ended_with_nothing_to_bill_bills_it(self):
        session = self.book(policy_id=self.policy_card.id)
        session.action_end_session()
        self.assertEqual((session.state, session.charge_ids.ids), ("done", []))
        self.env["bookconnect.session.correct"]._correct(
            session.with_user(self.therapist), 30, "Held by phone"
        )
        self.assertEqual(session.corrected_by_id, self.therapist)
        self.assertEqual(session.corrected_minutes, 30)
        self.assertEqual(session.charge_ids.kind, "usage")
        self.assertGreater(session.amount, 0)
        self.assertAlmostEqual(session.invoice_id.amount_total, session.amount)
        self.assertIn(session.state, ("invoiced", "paid"))
