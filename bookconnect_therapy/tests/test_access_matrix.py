from odoo.exceptions import AccessError
from odoo.tests import tagged

from .access_table import MATRIX, READS, R, W, writes_for
from .common import StripeSessionCase, record_reliability


@tagged("post_install", "-at_install", "bookconnect")
class TestAccessMatrix(StripeSessionCase):
    """Who may read and write what, through the ORM, for each role and record type."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.accountant = cls._make_user(
            "Avery Accountant", "acc", [cls.env.ref("account.group_account_invoice")]
        )
        cls.public = cls.env.ref("base.public_user")

    def setUp(self):
        super().setUp()
        self.mine = self.held(30)
        self.mine.note = "<p>Clinical: discussed sleep</p>"
        self.mine.action_end_session()  # invoiced and charged: invoice, transaction, payment
        self.theirs = self.held(20, therapist=self.therapist_b, client=self.client_b)
        self.records = {
            "session": self.mine,
            "call": self.mine.call_id,
            "segment": self.mine.call_id.segment_ids[:1],
            "policy": self.mine.policy_id,
            "invoice": self.mine.invoice_id,
            "transaction": self.mine.transaction_ids[:1],
            "saved card": self.token,
        }

    def can(self, user, kind, mode):
        record = self.records[kind].with_user(user)
        try:
            if mode == R:
                record.read(READS[kind])
            else:
                with self.env.cr.savepoint():
                    record.write(writes_for(kind, self.mine.id))
                    record.env.flush_all()
        except AccessError:
            return False
        return True

    def test_the_matrix(self):
        users = {
            "therapist A": self.therapist,
            "therapist B": self.therapist_b,
            "practice manager": self.manager,
            "accountant": self.accountant,
            "portal client X": self.client_user,
            "portal client Y": self.client_b_user,
            "public visitor": self.public,
        }
        run = passed = 0
        failures = []
        for role, rights in MATRIX.items():
            for kind, (read, write) in rights.items():
                for mode, wanted in ((R, read), (W, write)):
                    run += 1
                    got = self.can(users[role], kind, mode)
                    if got == bool(wanted):
                        passed += 1
                    else:
                        failures.append(f"{role} {mode} {kind}: expected {bool(wanted)}, got {got}")
        record_reliability("access", run=run, passed=passed)
        self.assertFalse(failures, "\n".join(failures))

    def test_accountants_see_invoices_but_no_clinical_detail(self):
        invoice = self.mine.invoice_id.with_user(self.accountant)
        self.assertEqual(invoice.invoice_line_ids.name, self.mine.invoice_id.invoice_line_ids.name)
        self.assertNotIn("sleep", invoice.invoice_line_ids.name)
        self.assertNotIn("bookconnect_session_id", invoice.fields_get())
        with self.assertRaises(AccessError):
            self.mine.with_user(self.accountant).read(["note"])
        with self.assertRaises(AccessError):
            self.mine.call_id.segment_ids.with_user(self.accountant).read(["start"])

    def test_notes_are_for_therapists_only(self):
        self.assertIn("sleep", self.mine.with_user(self.therapist).note)
        with self.assertRaises(AccessError):
            self.mine.with_user(self.client_user).read(["note"])

    def test_session_calendar_events_are_private(self):
        event = self.mine.calendar_event_id
        self.assertEqual(event.privacy, "private")
        self.env.invalidate_all()  # as a fresh request would: masking happens on fetch
        seen_by_other = event.with_user(self.therapist_b).read(["name", "partner_ids"])[0]
        self.assertEqual(seen_by_other["name"], "Busy")
        self.assertNotIn(self.client.id, seen_by_other["partner_ids"])
        self.env.invalidate_all()
        seen_by_owner = event.with_user(self.therapist).read(["name"])[0]
        self.assertIn(self.client.name, seen_by_owner["name"])

    def test_secrets_are_for_system_administrators(self):
        self.assertEqual(
            self.env["res.company"]._fields["bookconnect_call_secret"].groups, "base.group_system"
        )
        for user in (self.manager, self.accountant, self.therapist):
            with self.assertRaises(AccessError):
                self.company.with_user(user).read(["bookconnect_call_secret"])
            with self.assertRaises(AccessError):
                self.stripe.with_user(user).read(["stripe_webhook_secret"])
