from datetime import timedelta

from freezegun import freeze_time
from psycopg2 import IntegrityError

from odoo import Command
from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.mail.tests.common import MailCase
from odoo.addons.queue_job.job import identity_exact
from odoo.addons.queue_job.tests.common import trap_jobs

from .common import SessionCase, StripeSessionCase


@tagged("post_install", "-at_install", "bookconnect")
class TestInvoicing(SessionCase, MailCase):
    def test_ending_posts_one_invoice_per_policy(self):
        session = self.held(35)
        with freeze_time("2026-11-27 11:00:00"):
            session.with_user(self.therapist).action_end_session()
        invoice = session.invoice_id
        self.assertEqual(session.state, "invoiced")
        self.assertEqual(invoice.state, "posted")
        self.assertEqual(invoice.move_type, "out_invoice")
        self.assertEqual(invoice.journal_id.type, "sale")
        self.assertEqual(invoice.partner_id, self.client)
        self.assertEqual(invoice.bookconnect_session_id, session)
        self.assertEqual(invoice.invoice_origin, session.name)
        line = invoice.invoice_line_ids
        self.assertEqual(len(line), 1)
        self.assertEqual(line.product_id, self.policy_minute.product_id)
        self.assertEqual(line.product_uom_id, self.env.ref("bookconnect_therapy.uom_minute"))
        self.assertEqual(line.quantity, 35)
        self.assertEqual(line.price_unit, 0.65)
        self.assertEqual(line.name, "Online session — 35 min, 27 Nov 2026")
        self.assertAlmostEqual(invoice.amount_untaxed, 22.75)
        self.assertAlmostEqual(session.amount, 22.75)
        # A card policy with no saved card: the client is sent the link to pay online, once;
        # Odoo's invoice sending is not queued on top of it.
        self.assertEqual(invoice.payment_state, "not_paid")
        self.assertTrue(invoice.is_move_sent)
        self.assertFalse(invoice.sending_data)

    def test_per_hour_and_per_session_quantities(self):
        hourly = self.policy(mode="hour", rate=100, rounding_increment=15)
        session = self.held(37, policy_id=hourly.id)
        session.action_end_session()
        line = session.invoice_id.invoice_line_ids
        self.assertEqual(
            (line.quantity, line.product_uom_id), (0.75, self.env.ref("uom.product_uom_hour"))
        )
        self.assertAlmostEqual(session.invoice_id.amount_untaxed, 75.0)
        flat = self.held(50, policy_id=self.policy_session.id)
        flat.action_end_session()
        self.assertEqual(flat.invoice_id.invoice_line_ids.quantity, 1)
        self.assertAlmostEqual(flat.invoice_id.amount_untaxed, 90.0)

    def test_taxes_come_from_the_product(self):
        tax = self.env["account.tax"].create(
            {"name": "VAT 20", "amount": 20, "type_tax_use": "sale"}
        )
        standard = self.policy(mode="session", rate=100)
        standard.product_id.taxes_id = [Command.set(tax.ids)]
        session = self.held(50, policy_id=standard.id)
        session.action_end_session()
        self.assertAlmostEqual(session.invoice_id.amount_total, 120.0)
        self.assertEqual(session.invoice_id.invoice_line_ids.tax_ids, tax)

    def test_the_invoice_shows_in_accounting_views_and_emails_the_portal_link(self):
        portal = self.policy(mode="minute", rate=0.65, collection="portal")
        session = self.held(35, policy_id=portal.id)
        session.action_end_session()
        self.assertTrue(session.invoice_id.sending_data, "queued for Odoo's invoice sending")
        invoice = session.invoice_id
        found = self.env["account.move"].search(
            [("move_type", "=", "out_invoice"), ("partner_id", "=", self.client.id)]
        )
        self.assertIn(invoice, found)
        with self.mock_mail_gateway():
            self.env["account.move"]._cron_account_move_send()
        self.assertFalse(invoice.sending_data)
        self.assertTrue(invoice.is_move_sent)
        sent = [m for m in self._mails if "casey@example.com" in " ".join(m["email_to"])]
        self.assertEqual(len(sent), 1, "the invoice was emailed to the client")
        self.assertIn(invoice.name, sent[0]["subject"])
        self.assertIn("access_token=", sent[0]["body"], "with a link to the portal")

    def test_nothing_to_bill_makes_no_invoice(self):
        graced = self.policy(mode="minute", rate=1, grace_minutes=5)
        session = self.held(3, policy_id=graced.id)
        session.action_end_session()
        self.assertEqual(session.state, "done")
        self.assertFalse(session.invoice_ids)

    def test_ending_twice_makes_one_invoice(self):
        session = self.held(35)
        session.action_end_session()
        session.action_end_session()
        session._end_sessions()
        self.assertEqual(len(session.invoice_ids), 1)

    def test_the_database_refuses_a_second_invoice(self):
        session = self.held(35)
        session.action_end_session()
        values = {"session_id": session.id, "kind": "usage", "amount": 1.0}
        with mute_logger("odoo.sql_db"), self.assertRaises(IntegrityError), self.env.cr.savepoint():
            self.env["bookconnect.session.charge"].create(values)

    def test_events_after_invoicing_are_refused_and_policy_changes_change_nothing(self):
        session = self.held(35)
        session.action_end_session()
        self.policy_minute.rate = 5.0
        self.assertAlmostEqual(session.invoice_id.amount_total, 22.75)
        self.assertAlmostEqual(session.amount, 22.75)
        with self.assertRaisesRegex(Exception, "invoiced"):
            session.write({"policy_id": self.policy_session.id})

    def test_sweep_invoices_in_one_batch(self):
        sessions = self.env["bookconnect.therapy.session"]
        for i in range(5):
            sessions |= self.held(20 + i)
        with freeze_time(self.at(40)):
            self.env["bookconnect.therapy.session"]._cron_sweep()
        self.assertEqual(set(sessions.mapped("state")), {"invoiced"})
        self.assertEqual(sessions.mapped("billable_minutes"), [20, 21, 22, 23, 24])
        self.assertEqual(len(sessions.invoice_ids), 5)

    def test_sweep_waits_for_the_delay_and_ends_overdue_calls(self):
        session = self.held(35)
        with freeze_time(self.at(40)):  # both left 5 minutes ago, delay is 10
            self.env["bookconnect.therapy.session"]._cron_sweep()
        self.assertEqual(session.state, "in_progress")
        overdue = self.book()
        self.external(overdue, "therapist", "joined", 0)
        self.external(overdue, "client", "joined", 0)  # the "left" events were lost
        with freeze_time(overdue.stop + timedelta(minutes=61)):
            self.env["bookconnect.therapy.session"]._cron_sweep()
        self.assertEqual(overdue.state, "invoiced")
        # closed at the scheduled end, not at the sweep's time
        self.assertEqual(overdue.billable_minutes, 50)

    def test_paid_invoice_marks_the_session_paid(self):
        session = self.held(35)
        session.action_end_session()
        self.env["account.payment.register"].with_context(
            active_model="account.move", active_ids=session.invoice_id.ids
        ).create({})._create_payments()
        self.assertIn(session.invoice_id.payment_state, ("paid", "in_payment"))
        self.assertEqual(session.state, "paid")


@tagged("post_install", "-at_install", "bookconnect")
class TestSweepQueuesPayments(StripeSessionCase):
    def test_the_sweep_commits_invoices_before_charging(self):
        clients = [self.client, self.client_b]
        token_b = self.token.copy({"partner_id": self.client_b.id, "provider_ref": "cus_b"})
        sessions = self.env["bookconnect.therapy.session"]
        for client in clients:
            sessions |= self.held(20, client=client)
        # The sweep as the cron runs it: its payments are jobs, run once it committed.
        sweep = self.env["bookconnect.therapy.session"].with_context(queue_job__no_delay=False)
        with trap_jobs() as jobs, freeze_time(self.at(40)):
            sweep._cron_sweep()
        txs = sessions.transaction_ids
        self.assertEqual(len(txs), 2, "one charge per client, created in one go")
        self.assertEqual(set(txs.mapped("state")), {"draft"})
        self.assertFalse(self.stripe_calls, "nothing sent inside the sweep")
        self.assertEqual(txs.token_id, self.token | token_b)
        self.assertEqual(
            sorted(txs.mapped("reference")), sorted(sessions.invoice_id.mapped("name"))
        )
        jobs.assert_jobs_count(2)
        for tx in txs:
            jobs.assert_enqueued_job(
                tx._bookconnect_send_job,
                args=("payment", None),
                properties={"channel": "root.stripe", "identity_key": identity_exact},
            )
        with freeze_time(self.at(40)):
            jobs.perform_enqueued_jobs()
        self.assertEqual(set(txs.mapped("state")), {"done"})
        self.assertEqual(len(self.calls("payment_intents")), 2)
        txs._post_process()  # what Odoo's job does for each completed payment
        self.assertEqual(set(sessions.mapped("state")), {"paid"})
