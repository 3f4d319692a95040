from datetime import datetime, time, timedelta

from odoo import fields
from odoo.tests import HttpCase, tagged

from .common import StripeSessionCase

SESSIONS = "/odoo/action-bookconnect_therapy.bookconnect_therapy_session_action"


@tagged("post_install", "-at_install", "bookconnect")
class TestBackOfficeTours(StripeSessionCase, HttpCase):
    """Each role's day in the back office, in a real browser (tours in
    static/src/tours/bookconnect_back_office_tours.js). Sessions are placed around the real
    time; nothing is frozen."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.accountant = cls._make_user(
            "Avery Accountant", "acc", [cls.env.ref("account.group_account_invoice")]
        )
        for user in (cls.therapist, cls.therapist_b, cls.manager, cls.accountant):
            user.write({"password": user.login, "tz": "UTC"})
        cls.policy_day = cls._make_policy(
            name="Tour per session", mode="session", rate=90, collection="card"
        )
        cls.policy_fees = cls._make_policy(
            mode="session",
            rate=80,
            collection="card",
            no_show_fee_kind="fixed",
            no_show_fee_fixed=40,
        )
        cls.absent = cls.env["res.partner"].create({"name": "Kim Absent", "email": "kim@x.com"})

    def now(self):
        return fields.Datetime.now().replace(microsecond=0)

    def joined(self, session, *events):
        """Record external call events ``(role, kind, minutes after the start)``."""
        session.call_id._replay_external_events(
            [(f"{session.id}-{role}-{kind}-{m}", kind, role, m) for role, kind, m in events]
        )._mark_in_progress()

    def test_the_therapists_day(self):
        now = self.now()
        # Today's session began a quarter of an hour ago (at midnight at the earliest, so that
        # it is on today's calendar whatever the hour).
        start = max(now - timedelta(minutes=15), datetime.combine(now.date(), time()))
        today = self.book(start=start, minutes=50, policy_id=self.policy_day.id)
        self.joined(today, ("therapist", "joined", 0), ("client", "joined", 0))
        dropped = self.book(start=now - timedelta(hours=3), client=self.client_b)
        self.joined(
            dropped,
            ("therapist", "joined", 0),
            ("client", "joined", 0),
            ("client", "left", 12),
            ("therapist", "left", 12),
        )
        absent = self.book(
            start=now - timedelta(minutes=20), client=self.absent, policy_id=self.policy_fees.id
        )
        self.assertEqual((today.state, dropped.state), ("in_progress", "in_progress"))

        self.start_tour(SESSIONS, "bookconnect_therapist_day", login=self.therapist.login)

        self.assertEqual(today.state, "paid")
        self.assertEqual(today.invoice_id.amount_total, 90.0)
        self.assertEqual(today.transaction_ids.token_id, self.token)
        self.assertEqual(dropped.corrected_minutes, 45)
        self.assertEqual(dropped.corrected_by_id, self.therapist)
        self.assertIn("went on by phone", dropped.correction_reason)
        self.assertEqual((absent.state, absent.fee_state), ("no_show", "pending"))
        self.assertEqual(absent.fee_charge_id.amount, 40.0)

    def test_the_practice_managers_day(self):
        self._make_token(self.client_b)
        refunded = self.held(30, therapist=self.therapist_b, client=self.client_b)
        refunded.action_end_session()
        self.held(20).action_end_session()
        missed = self.book(
            start=self.now() - timedelta(hours=1),
            therapist=self.therapist_b,
            client=self.absent,
            policy_id=self.policy_fees.id,
        )
        missed.env["bookconnect.fee.manager"]._mark_no_shows(missed)
        self.assertEqual((refunded.state, missed.fee_state), ("paid", "pending"))

        self.start_tour("/odoo", "bookconnect_manager_day", login=self.manager.login)

        self.assertEqual(self.company.bookconnect_booking_horizon_days, 21)
        self.assertEqual(self.policy_day.session_minutes, 45)
        self.assertEqual(missed.fee_state, "waived")
        self.assertEqual(missed.fee_charge_id.waiver_reason, "The client was in hospital")
        [credit_note] = refunded.invoice_ids.filtered(lambda m: m.move_type == "out_refund")
        self.assertEqual(credit_note.amount_total, 30.0)
        self.assertEqual(credit_note.state, "posted")
        refunds = refunded.transaction_ids.filtered(lambda tx: tx.operation == "refund")
        self.assertEqual(refunds.amount, -30.0)

    def test_the_accountants_day(self):
        session = self.held(35)
        session.note = "<p>Discussed sleep</p>"
        session.action_end_session()
        self.assertIn(session.invoice_id.payment_state, ("paid", "in_payment"))

        self.start_tour("/odoo", "bookconnect_accountant_day", login=self.accountant.login)
