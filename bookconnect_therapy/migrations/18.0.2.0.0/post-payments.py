"""Payments move to the payment engine (queue_job jobs): transactions name the service that
handles their outcome, the home-made retry queue (its cron and columns) goes, and what waited
in it becomes a job."""

import logging

from odoo import SUPERUSER_ID, api

_logger = logging.getLogger(__name__)

OLD_COLUMNS = ("bookconnect_retry_at", "bookconnect_attempts")


def _column_exists(cr, table, column):
    cr.execute(
        "SELECT 1 FROM information_schema.columns WHERE table_name = %s AND column_name = %s",
        (table, column),
    )
    return bool(cr.fetchone())


def migrate(cr, version):
    if not version:
        return
    env = api.Environment(cr, SUPERUSER_ID, {})
    # The retry cron is noupdate: removed from the data files, it stays unless deleted here.
    cron = env.ref("bookconnect_therapy.ir_cron_retry_charges", raise_if_not_found=False)
    if cron:
        cron.unlink()
    # Card holds and the prepaid balance are services of their own: their crons (noupdate
    # too) follow them.
    holds_cron = env.ref("bookconnect_therapy.ir_cron_place_holds", raise_if_not_found=False)
    if holds_cron:
        holds_cron.model_id = env.ref("bookconnect_therapy.model_bookconnect_card_hold")
    watch_cron = env.ref("bookconnect_therapy.ir_cron_watch_prepaid", raise_if_not_found=False)
    if watch_cron:
        watch_cron.model_id = env.ref("bookconnect_therapy.model_bookconnect_prepaid_watch")
    # Transactions name the service that handles their outcome.
    cr.execute(
        """UPDATE payment_transaction
              SET bookconnect_handler = CASE
                  WHEN bookconnect_purpose = 'hold' THEN 'bookconnect.card.hold'
                  WHEN bookconnect_purpose = 'topup' THEN 'bookconnect.prepaid.balance'
                  ELSE 'bookconnect.collector' END
            WHERE bookconnect_purpose IN ('charge', 'hold', 'topup')
              AND bookconnect_handler IS NULL"""
    )
    if not _column_exists(cr, "payment_transaction", "bookconnect_retry_at"):
        return
    cr.execute(
        """SELECT id FROM payment_transaction
            WHERE bookconnect_retry_at IS NOT NULL AND state IN ('draft', 'authorized')"""
    )
    waiting = env["payment.transaction"].browse([row[0] for row in cr.fetchall()])
    # Charges, holds and top-ups not sent yet (or whose outcome was unknown) are sent again
    # with their reference, so their idempotency key: what went through is not taken twice.
    waiting.filtered(lambda tx: tx.state == "draft")._bookconnect_send("payment")
    for hold in waiting.filtered(lambda tx: tx.state == "authorized"):
        # A capture whose outcome was unknown: captured again for what its invoice owes.
        invoices = hold.invoice_ids.filtered(
            lambda m: m.state == "posted" and m.payment_state in ("not_paid", "partial")
        )
        if invoices:
            due = sum(invoices.mapped("amount_residual"))
            hold._bookconnect_send(
                "capture", min(due, hold.amount), handler="bookconnect.collector"
            )
    _logger.info("%s waiting payments queued as payment jobs", len(waiting))
    for column in OLD_COLUMNS:
        cr.execute(f"ALTER TABLE payment_transaction DROP COLUMN IF EXISTS {column}")
