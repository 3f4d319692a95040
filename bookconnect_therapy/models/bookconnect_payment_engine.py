import logging
from datetime import timedelta

import requests

from odoo import _, api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.osv import expression

from odoo.addons.queue_job.exception import RetryableJobError
from odoo.addons.queue_job.job import identity_exact

_logger = logging.getLogger(__name__)

# What the engine sends for a transaction: its payment (charge, hold, top-up), or the capture,
# the void or a refund of it.
OPERATIONS = ("payment", "capture", "void", "refund")
# Errors that leave the outcome unknown and are worth trying again with the same idempotency
# key: the network (timeouts, connections) and the provider's own errors, which Odoo raises as
# UserError/ValidationError. Anything else is a bug and fails the job for all to see.
SEND_ERRORS = (requests.exceptions.RequestException, UserError, ValidationError)
# Attempts of a request whose outcome stays unknown; the waits between them are the retry
# pattern of the job function (data/queue_job_data.xml). The last attempt gives up.
MAX_ATTEMPTS = 5
JOB_CHANNEL = "root.stripe"
# Payment jobs waiting longer than this past their time mean no job runner is running them.
RUNNER_LATE_AFTER = timedelta(minutes=10)


class BookconnectPaymentEngine(models.AbstractModel):
    """The payment engine of payment transactions: every request the product sends to the
    provider (charge, hold, capture, void, refund) runs in a queue_job job of its own, after
    the caller committed, retried while its outcome is unknown, and its outcome is handed to
    the service that made the transaction (``bookconnect_handler``)."""

    _name = "bookconnect.payment.engine"
    _description = "Therapy payment engine"

    def _bookconnect_send(
        self, operation="payment", amount=None, eta=None, max_retries=None, **job_kwargs
    ):
        """Send ``operation`` for each transaction in a job of its own (channel
        ``root.stripe``), run once the caller's database transaction is committed: a caller
        rolled back never leaves money taken for a transaction that does not exist.

        One job per transaction, operation, amount and keyword arguments (identity key):
        asking twice queues once. Its outcome goes to ``_on_payment_outcome`` of the model
        ``handler`` names, by default the transaction's ``bookconnect_handler``.

        :param str operation: ``payment`` (charge, hold, top-up), ``capture``, ``void`` or
            ``refund``.
        :param float amount: what to capture or refund; ``None`` for all of it.
        :param eta: when to send, at the earliest (seconds, timedelta or datetime).
        :param job_kwargs: ``handler`` (a model name) for this request's outcome;
            ``invoice_ids`` that a refund pays out (credit notes).
        :return: the transactions.
        :raise ValueError: for an unknown operation.
        """
        if operation not in OPERATIONS:
            raise ValueError(f"unknown payment operation {operation!r}")
        for tx in self:
            tx.with_delay(
                channel=JOB_CHANNEL,
                identity_key=identity_exact,
                max_retries=max_retries or MAX_ATTEMPTS,
                eta=eta,
                description=_(
                    "Payment %(reference)s: %(operation)s",
                    reference=tx.reference,
                    operation=operation,
                ),
            )._bookconnect_send_job(operation, amount, **job_kwargs)
        return self

    def _bookconnect_send_job(self, operation, amount=None, invoice_ids=None, handler=None):
        """The job of :meth:`_bookconnect_send`: send the request, then tell the handler.

        Network and provider errors leave the outcome unknown: queue_job tries again after
        the wait of the retry pattern, with the same idempotency key (the provider answers
        a repeated request with the first one's result), and the last attempt gives up with
        the transaction in error. Other errors are bugs: they fail the job, which the
        practice manager sees and can requeue. A transaction settled meanwhile (a webhook,
        an earlier attempt) is left as it is.
        """
        self.ensure_one()
        if not self._bookconnect_awaits(operation):
            return f"nothing to send: the transaction is {self.state}"
        # The transaction is ours until the job ends: whoever else writes to it meanwhile (a
        # webhook, another worker) waits. Locking it after another wrote it is a concurrency
        # error, which queue_job retries (quietly, not as a failed query).
        self.env.cr.execute(
            "SELECT id FROM payment_transaction WHERE id = %s FOR NO KEY UPDATE",
            (self.id,),
            log_exceptions=False,
        )
        if invoice_ids and self._bookconnect_refunded_amount(
            self.env["account.move"].browse(invoice_ids)
        ):
            return "nothing to send: the refund is made"
        job = self._bookconnect_current_job()
        # A job run by the job runner leaves the accounting to Odoo's post-processing job, as
        # a webhook does; a send run at once (no runner in the way) books it at once.
        tx = self.with_context(bookconnect_defer_post_process=True) if job else self
        try:
            with self.env.cr.savepoint():
                tx._bookconnect_request(operation, amount, invoice_ids)
        except SEND_ERRORS as exc:
            _logger.info("transaction %s: %s failed: %s", self.reference, operation, exc)
            if job and job.retry + 1 < job.max_retries:
                raise RetryableJobError(str(exc)) from exc
            if job and operation != "payment":
                # A capture, void or refund still unknown: the job fails, for the practice
                # manager to see and requeue; the transaction stays as it was.
                raise
            if job:
                tx._set_error(
                    _(
                        "Gave up after %(count)s attempts: %(error)s",
                        count=job.max_retries,
                        error=exc,
                    )
                )
            else:
                # Sent at once: the next attempts are a job of their own.
                pattern = (
                    self.env.ref("bookconnect_therapy.queue_job_function_payment_send")
                    .sudo()
                    ._parse_retry_pattern()
                )
                kwargs = {"invoice_ids": invoice_ids, "handler": handler}
                tx.with_context(queue_job__no_delay=False)._bookconnect_send(
                    operation,
                    amount,
                    eta=pattern.get(1, 300),
                    max_retries=MAX_ATTEMPTS - 1,
                    **{key: value for key, value in kwargs.items() if value},
                )
                tx.state_message = str(exc)
                tx._bookconnect_tell_handler(operation, error=exc, handler=handler)
                return f"{operation}: outcome unknown, queued again"
        tx._bookconnect_tell_handler(operation, handler=handler)
        return f"{operation}: {tx._bookconnect_outcome()}"

    def _bookconnect_awaits(self, operation):
        """Whether ``operation`` is still to be sent for this transaction."""
        self.ensure_one()
        return (
            self.state
            == {
                "payment": "draft",
                "capture": "authorized",
                "void": "authorized",
                "refund": "done",
            }[operation]
        )

    def _bookconnect_request(self, operation, amount=None, invoice_ids=None):
        self.ensure_one()
        if operation == "payment":
            self._send_payment_request()
        elif operation == "capture":
            self._bookconnect_capture(amount)
        elif operation == "void":
            self._send_void_request()
        else:
            # The refund's idempotency key names what it pays out: the same refund asked
            # again is the same request.
            self.with_context(
                bookconnect_refund_invoice_ids=invoice_ids,
                bookconnect_refund_key=f"invoices-{invoice_ids}" if invoice_ids else "",
            )._send_refund_request(amount_to_refund=amount)

    def _bookconnect_capture(self, amount):
        """Capture ``amount``; when the capture fails, ask the provider whether it went
        through all the same (its answer lost) before anyone concludes it did not.

        :raise: what reaching the provider raises when it cannot tell.
        """
        try:
            with self.env.cr.savepoint():
                self._send_capture_request(amount_to_capture=amount)
        except SEND_ERRORS as exc:
            _logger.info("capture of %s failed: %s", self.reference, exc)
            if not self._bookconnect_capture_outcome():
                self.state_message = str(exc)

    def _bookconnect_current_job(self):
        """The stored job running this code, when it runs as one."""
        uuid = self.env.context.get("job_uuid")
        if not uuid:
            return self.env["queue.job"]
        return self.env["queue.job"].sudo().search([("uuid", "=", uuid)], limit=1)

    def _bookconnect_queued(self, operation=None, detail=None):
        """The transactions with a job (of ``operation``, or any; whose call says ``detail``,
        when given) still to run: pending, queued or running."""
        if not self:
            return self
        args = f"'{operation}'" if operation else ""
        # queue_job names each job's call: payment.transaction(<id>,)._bookconnect_send_job(...)
        calls = expression.OR(
            [
                [("func_string", "=like", f"{self._name}({tx.id},)._bookconnect_send_job({args}%")]
                for tx in self
            ]
        )
        jobs = (
            self.env["queue.job"]
            .sudo()
            .search(
                [
                    ("state", "in", ("wait_dependencies", "pending", "enqueued", "started")),
                    *([("func_string", "like", detail)] if detail else []),
                    *calls,
                ]
            )
        )
        queued = set(jobs.mapped(lambda job: job.records.ids[0] if job.records else 0))
        return self.filtered(lambda tx: tx.id in queued)

    def _bookconnect_outcome(self):
        """What became of the transaction, in the words handlers use: ``done``,
        ``authorized``, ``requires_action`` (the bank wants the client), ``declined`` (with
        :meth:`_bookconnect_failure_reason`), ``error`` (the engine gave up) or ``pending``."""
        self.ensure_one()
        if self.state == "draft":
            return "requires_action" if self.provider_reference else "pending"
        if self.state == "error" and (self.state_message or "").startswith("Gave up"):
            return "error"
        if self.state in ("error", "cancel"):
            return "declined"
        return self.state

    @api.model
    def _bookconnect_check_job_runner(self):
        """Say it, in the log, when payment jobs wait past their time: no job runner runs
        them (servers must load queue_job server-wide), and no payment reaches the bank.

        :return: how many payment jobs are late.
        """
        late_before = fields.Datetime.now() - RUNNER_LATE_AFTER
        late = (
            self.env["queue.job"]
            .sudo()
            .search_count(
                [
                    ("channel", "=like", f"{JOB_CHANNEL}%"),
                    ("state", "in", ("pending", "enqueued")),
                    "|",
                    ("eta", "<", late_before),
                    "&",
                    ("eta", "=", False),
                    ("date_created", "<", late_before),
                ]
            )
        )
        if late:
            _logger.warning(
                "%s payment jobs have waited more than %s minutes: is the job runner running? "
                "(start Odoo with --load=base,web,queue_job)",
                late,
                int(RUNNER_LATE_AFTER.total_seconds() // 60),
            )
        return late

    def _bookconnect_tell_handler(self, operation, error=None, handler=None):
        if handler:
            self.env[handler]._on_payment_outcome(self, operation=operation, error=error)
            return
        for name, txs in self.grouped("bookconnect_handler").items():
            if name:
                self.env[name]._on_payment_outcome(txs, operation=operation, error=error)
