from ast import literal_eval
from datetime import timedelta
from unittest.mock import patch

import requests
from freezegun import freeze_time

from odoo.tests import tagged
from odoo.tools import mute_logger

from odoo.addons.queue_job.job import identity_exact
from odoo.addons.queue_job.tests.common import trap_jobs

from .common import StripeSessionCase

ENGINE = "odoo.addons.bookconnect_therapy.models.bookconnect_payment_engine"


@tagged("post_install", "-at_install", "bookconnect")
class TestPaymentEngine(StripeSessionCase):
    """Every request to Stripe is a job per transaction, queued once, sent after commit,
    retried while its outcome is unknown, and its outcome told to the transaction's handler."""

    def setUp(self):
        super().setUp()
        # As in production: jobs are stored, and run by the job runner after commit.
        self.env = self.env(context=dict(self.env.context, queue_job__no_delay=False))

    def charge(self, amount=30.0):
        """A charge of the client's saved card made by the collector, not sent yet."""
        values = self.env["payment.transaction"]._bookconnect_prepare_offline_values(
            "bookconnect.collector",
            self.token,
            amount,
            self.currency,
            partner=self.client,
            purpose="charge",
            reference="ENGINE-1",
        )
        return self.env["payment.transaction"].create(values)

    def test_a_job_per_transaction_in_the_stripe_channel_queued_once(self):
        tx = self.charge()
        with trap_jobs() as jobs:
            tx._bookconnect_send()
            tx._bookconnect_send()
        jobs.assert_jobs_count(1)
        jobs.assert_enqueued_job(
            tx._bookconnect_send_job,
            args=("payment", None),
            properties={"channel": "root.stripe", "identity_key": identity_exact},
        )
        self.assertFalse(self.stripe_calls, "nothing is sent before the caller commits")
        # Stored for real, a second request for the same transaction finds the first job.
        tx._bookconnect_send()
        tx._bookconnect_send()
        self.assertEqual(len(self.payment_jobs()), 1)
        self.assertEqual(tx._bookconnect_queued("payment"), tx)
        self.assertFalse(tx._bookconnect_queued("capture"))

    def test_the_job_sends_once_and_tells_the_handler(self):
        tx = self.charge()
        self.assertEqual(tx.bookconnect_handler, "bookconnect.collector")
        tx._bookconnect_send()
        Collector = type(self.env["bookconnect.collector"])
        with patch.object(Collector, "_on_payment_outcome", autospec=True) as told:
            [job] = self.run_payment_jobs()
        self.assertEqual(job.state, "done")
        self.assertEqual(tx.state, "done")
        self.assertEqual(told.call_count, 1)
        self.assertEqual(told.call_args.args[1], tx)
        self.assertEqual(told.call_args.kwargs, {"operation": "payment", "error": None})
        # A job requeued after it ran finds the transaction settled and sends nothing.
        job.requeue()
        self.run_payment_jobs()
        self.assertEqual(len(self.calls("payment_intents")), 1)

    @mute_logger(ENGINE)
    def test_network_errors_are_retried_by_the_pattern_then_given_up(self):
        self.stripe_answers["payment_intents"] = [requests.exceptions.ConnectionError("down")] * 9
        tx = self.charge()
        with freeze_time(self.at(0)):
            tx._bookconnect_send()
            [job] = self.run_payment_jobs()
        self.assertEqual((job.state, job.retry, tx.state), ("pending", 1, "draft"))
        waits = []
        for _attempt in range(4):
            waits.append(round((job.eta - self.at(0)).total_seconds() / 60))
            with freeze_time(job.eta + timedelta(seconds=1)):
                self.run_payment_jobs()
            if job.state != "pending":
                break
        self.assertEqual(waits[:3], [5, 30 + 5, 120 + 30 + 5])
        self.assertEqual(len(self.calls("payment_intents")), 5)
        self.assertEqual(job.state, "done")
        self.assertEqual(tx.state, "error")
        self.assertIn("Gave up after 5 attempts", tx.state_message)
        keys = {call["idempotency_key"] for call in self.calls("payment_intents")}
        self.assertEqual(len(keys), 1, "every attempt with the same idempotency key")

    def test_bugs_are_not_retried_they_fail_the_job(self):
        tx = self.charge()
        tx._bookconnect_send()
        Transaction = type(self.env["payment.transaction"])
        with patch.object(Transaction, "_send_payment_request", side_effect=KeyError("oops")):
            [job] = self.run_payment_jobs()
        self.assertEqual((job.state, job.exc_name), ("failed", "KeyError"))
        self.assertEqual(tx.state, "draft")
        # Fixed, the job is requeued (by the practice manager) and sends the payment.
        job.with_user(self.manager).requeue()
        self.run_payment_jobs()
        self.assertEqual((job.state, tx.state), ("done", "done"))

    def test_unknown_operations_are_refused(self):
        with self.assertRaises(ValueError):
            self.charge()._bookconnect_send("transfer")

    def test_captures_voids_and_refunds_carry_an_idempotency_key(self):
        tx = self.charge()
        tx._bookconnect_send()
        self.run_payment_jobs()
        refund_keys = []
        for _attempt in range(2):  # the same refund asked twice (e.g. after a rollback)
            with self.env.cr.savepoint(flush=True) as savepoint:
                tx.with_context(bookconnect_refund_key="credit-note-1")._send_refund_request(
                    amount_to_refund=10.0
                )
                refund_keys.append(self.calls("refunds")[-1]["idempotency_key"])
                savepoint.rollback()
        self.assertTrue(refund_keys[0])
        self.assertEqual(refund_keys[0], refund_keys[1])
        tx._send_refund_request(amount_to_refund=5.0)
        self.assertNotEqual(self.calls("refunds")[-1]["idempotency_key"], refund_keys[0])

    def test_payment_jobs_waiting_without_a_runner_are_reported(self):
        tx = self.charge()
        with freeze_time(self.at(0)):
            tx._bookconnect_send()
        Transaction = self.env["payment.transaction"]
        with freeze_time(self.at(5)):
            self.assertEqual(Transaction._bookconnect_check_job_runner(), 0)
        with freeze_time(self.at(11)), self.assertLogs(ENGINE, "WARNING") as logs:
            self.assertEqual(Transaction._bookconnect_check_job_runner(), 1)
        self.assertIn("is the job runner running?", logs.output[0])

    def test_the_practice_manager_sees_the_payment_jobs(self):
        tx = self.charge()
        tx._bookconnect_send()
        action = self.env.ref("bookconnect_therapy.queue_job_action_payments")
        jobs = self.env["queue.job"].with_user(self.manager).search(literal_eval(action.domain))
        self.assertEqual(jobs, self.payment_jobs())
        menu = self.env.ref("bookconnect_therapy.queue_job_menu_payments")
        self.assertIn(self.group_manager, menu.groups_id)


@tagged("post_install", "-at_install", "bookconnect")
class TestCreditNotesRefundedToCards(StripeSessionCase):
    """A posted credit note handed to the collection is paid back to the card that paid the
    invoice it reverses, through the payment engine, once."""

    def test_a_credit_note_is_refunded_to_the_card_once(self):
        session = self.held(35)
        session.action_end_session()
        invoice = session.invoice_id
        self.assertEqual(invoice.payment_state, "paid")
        [charge] = session.transaction_ids
        credit_note = invoice._reverse_moves(
            default_values_list=[{"ref": "Audio trouble", "invoice_date": invoice.invoice_date}]
        )
        credit_note.action_post()
        collector = self.env["bookconnect.collector"].with_context(queue_job__no_delay=False)
        with trap_jobs() as jobs:
            collector._collect(credit_note)
            collector._collect(credit_note)  # handed twice: asked once
        jobs.assert_jobs_count(1)
        jobs.assert_enqueued_job(
            charge._bookconnect_send_job,
            args=("refund", 35.0),
            kwargs={"invoice_ids": credit_note.ids, "handler": "bookconnect.collector"},
            properties={"channel": "root.stripe", "identity_key": identity_exact},
        )
        jobs.perform_enqueued_jobs()
        [refund] = charge.child_transaction_ids
        self.assertEqual((refund.operation, refund.state, refund.amount), ("refund", "done", -35.0))
        self.assertEqual(refund.invoice_ids, credit_note)
        self.assertIn(credit_note.payment_state, ("paid", "in_payment"))
        [request] = self.calls("refunds")
        self.assertTrue(request["idempotency_key"])
        # Handed again once refunded: nothing more is asked of the card.
        self.env["bookconnect.collector"]._collect(credit_note)
        self.assertEqual(len(self.calls("refunds")), 1)
        self.assertEqual(charge.child_transaction_ids, refund)
