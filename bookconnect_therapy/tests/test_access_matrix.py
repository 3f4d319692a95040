from odoo.exceptions import AccessError
from odoo.tests import tagged

from .common import StripeSessionCase, record_reliability

R, W = "read", "write"


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
        self.reads = {
            "session": ["name", "start", "amount"],
            "call": ["billable_seconds"],
            "segment": ["start", "end"],
            "policy": ["name", "rate"],
            "invoice": ["name", "amount_total"],
            "transaction": ["reference", "amount"],
            "saved card": ["payment_details"],
        }
        self.writes = {
            "session": {"note": "<p>updated</p>"},
            "call": {"session_id": self.mine.id},
            "segment": {"role": "client"},
            "policy": {"sequence": 3},
            "invoice": {"ref": "x"},
            "transaction": {"state_message": "x"},
            "saved card": {"payment_details": "9999"},
        }

    def can(self, user, record, mode):
        record = record.with_user(user)
        try:
            if mode == R:
                record.read(self.fields_for(record, self.reads))
            else:
                with self.env.cr.savepoint():
                    record.write(self.fields_for(record, self.writes))
                    record.env.flush_all()
        except AccessError:
            return False
        return True

    def fields_for(self, record, table):
        for kind, candidate in self.records.items():
            if candidate._name == record._name:
                return table[kind]
        raise AssertionError(record)

    def test_the_matrix(self):
        # role -> record type -> (can read, can write)
        expected = {
            "therapist A": (
                self.therapist,
                {
                    "session": (1, 1),
                    "call": (1, 0),
                    "segment": (1, 0),
                    "policy": (1, 0),
                    "invoice": (0, 0),
                    "transaction": (0, 0),
                    "saved card": (0, 0),
                },
            ),
            "therapist B": (
                self.therapist_b,
                {
                    "session": (0, 0),
                    "call": (0, 0),
                    "segment": (0, 0),
                    "policy": (1, 0),
                    "invoice": (0, 0),
                    "transaction": (0, 0),
                    "saved card": (0, 0),
                },
            ),
            "practice manager": (
                self.manager,
                {
                    "session": (1, 1),
                    "call": (1, 0),
                    "segment": (1, 0),
                    "policy": (1, 1),
                    "invoice": (0, 0),
                    "transaction": (0, 0),
                    "saved card": (0, 0),
                },
            ),
            "accountant": (
                self.accountant,
                {
                    "session": (0, 0),
                    "call": (0, 0),
                    "segment": (0, 0),
                    "policy": (1, 0),
                    "invoice": (1, 1),
                    "transaction": (1, 1),
                    "saved card": (1, 0),
                },
            ),
            "portal client X": (
                self.client_user,
                {
                    "session": (1, 0),
                    "call": (0, 0),
                    "segment": (0, 0),
                    "policy": (0, 0),
                    "invoice": (1, 0),
                    "transaction": (0, 0),
                    "saved card": (1, 0),
                },
            ),
            "portal client Y": (
                self.client_b_user,
                {
                    "session": (0, 0),
                    "call": (0, 0),
                    "segment": (0, 0),
                    "policy": (0, 0),
                    "invoice": (0, 0),
                    "transaction": (0, 0),
                    "saved card": (0, 0),
                },
            ),
            "public visitor": (
                self.public,
                {
                    "session": (0, 0),
                    "call": (0, 0),
                    "segment": (0, 0),
                    "policy": (0, 0),
                    "invoice": (0, 0),
                    "transaction": (0, 0),
                    "saved card": (0, 0),
                },
            ),
        }
        run = passed = 0
        failures = []
        for role, (user, rights) in expected.items():
            for kind, (read, write) in rights.items():
                record = self.records[kind]
                for mode, wanted in ((R, read), (W, write)):
                    run += 1
                    got = self.can(user, record, mode)
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
