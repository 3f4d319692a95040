"""Sessions are billed through charge lines: the fees kept on the session (``fee_*``) and the
kinds of session invoices (``account.move.bookconnect_kind``) become
``bookconnect.session.charge`` records, linked to the invoice or credit note line that bills
them; the old columns and the invoice index go."""

import logging

from odoo.tools import SQL

_logger = logging.getLogger(__name__)

FEE_LABELS = {"late_cancel": "Late cancellation fee", "no_show": "No-show fee"}


def _column_exists(cr, table, column):
    cr.execute(
        "SELECT 1 FROM information_schema.columns WHERE table_name = %s AND column_name = %s",
        (table, column),
    )
    return bool(cr.fetchone())


def _charge_state_sql(move):
    """SQL of the state of a charge billed by the move whose table alias is ``move``."""
    return SQL(
        """
        CASE
            WHEN %(move)s.state = 'cancel' THEN 'cancelled'
            WHEN %(move)s.payment_state IN ('paid', 'in_payment') THEN 'paid'
            WHEN %(move)s.move_type = 'out_refund'
                 AND %(move)s.payment_state = 'reversed' THEN 'paid'
            ELSE 'invoiced'
        END
        """,
        move=SQL.identifier(move),
    )


def _charges_from_moves(cr, kinds_sql, kind_sql, amount_sql):
    """One charge per session move matching ``kinds_sql``, billed by its first product line."""
    cr.execute(
        SQL(
            """
        INSERT INTO bookconnect_session_charge (
            session_id, company_id, therapist_id, partner_id, currency_id, kind, description,
            quantity, price_unit, amount, state, refunded_move_id, move_id, move_line_id,
            create_uid, create_date, write_uid, write_date)
        SELECT s.id, s.company_id, s.therapist_id, s.partner_id, s.currency_id, %(kind)s,
               COALESCE(line.name, m.ref, m.name), COALESCE(line.quantity, 1),
               COALESCE(line.price_unit, m.amount_untaxed), %(amount)s,
               %(state)s, m.reversed_entry_id, m.id, line.id,
               m.create_uid, m.create_date, m.write_uid, m.write_date
          FROM account_move m
          JOIN bookconnect_therapy_session s ON s.id = m.bookconnect_session_id
          LEFT JOIN bookconnect_billing_policy p ON p.id = s.policy_id
          LEFT JOIN LATERAL (
                SELECT l.id, l.name, l.quantity, l.price_unit
                  FROM account_move_line l
                 WHERE l.move_id = m.id AND l.display_type = 'product'
              ORDER BY l.sequence, l.id
                 LIMIT 1
          ) line ON TRUE
         WHERE %(where)s
      ORDER BY m.id
            """,
            kind=kind_sql,
            amount=amount_sql,
            state=_charge_state_sql("m"),
            where=kinds_sql,
        )
    )
    return cr.rowcount


def _fee_charges(cr):
    """Fees in review, waived or charged; a charged fee is billed by its own invoice, or was
    kept from the session's advance payment (then that invoice paid it)."""
    cr.execute(
        SQL(
            """
        INSERT INTO bookconnect_session_charge (
            session_id, company_id, therapist_id, partner_id, currency_id, kind, description,
            quantity, price_unit, amount, state, due_at, waiver_reason, move_id, move_line_id,
            create_uid, create_date, write_uid, write_date)
        SELECT s.id, s.company_id, s.therapist_id, s.partner_id, s.currency_id, s.fee_kind,
               COALESCE(line.name, CASE s.fee_kind WHEN 'no_show' THEN %(no_show)s
                                                   ELSE %(late_cancel)s END),
               1, s.fee_amount, s.fee_amount,
               CASE
                   WHEN s.fee_state = 'pending' THEN 'review'
                   WHEN s.fee_state = 'waived' THEN 'waived'
                   WHEN fee_move.id IS NOT NULL THEN %(fee_state)s
                   WHEN kept.payment_state IN ('paid', 'in_payment', 'reversed') THEN 'paid'
                   ELSE 'invoiced'
               END,
               s.fee_due_at, s.fee_waiver_reason,
               CASE WHEN s.fee_state = 'charged' THEN COALESCE(fee_move.id, kept.id) END,
               line.id,
               s.write_uid, COALESCE(s.cancelled_at, s.ended_at, s.write_date),
               s.write_uid, s.write_date
          FROM bookconnect_therapy_session s
          LEFT JOIN LATERAL (
                SELECT m.id, m.state, m.payment_state, m.move_type
                  FROM account_move m
                 WHERE m.bookconnect_session_id = s.id AND m.bookconnect_kind = s.fee_kind
                   AND m.move_type = 'out_invoice' AND m.state != 'cancel'
              ORDER BY m.id
                 LIMIT 1
          ) fee_move ON TRUE
          LEFT JOIN account_move kept ON kept.id = s.invoice_id
          LEFT JOIN LATERAL (
                SELECT l.id, l.name
                  FROM account_move_line l
                 WHERE l.move_id = fee_move.id AND l.display_type = 'product'
              ORDER BY l.sequence, l.id
                 LIMIT 1
          ) line ON TRUE
         WHERE s.fee_state IS NOT NULL AND s.fee_kind IS NOT NULL
            """,
            fee_state=_charge_state_sql("fee_move"),
            **FEE_LABELS,
        )
    )
    return cr.rowcount


def migrate(cr, version):
    if not version or not _column_exists(cr, "account_move", "bookconnect_kind"):
        return
    sessions = _charges_from_moves(
        cr,
        SQL("m.move_type = 'out_invoice' AND m.bookconnect_kind IN ('session', 'difference')"),
        # A pay-in-full policy's session invoice is the booked price, invoiced at booking.
        SQL(
            """CASE WHEN m.bookconnect_kind = 'difference' THEN 'difference'
                    WHEN p.prepayment = 'full' THEN 'booked' ELSE 'usage' END"""
        ),
        SQL("m.amount_untaxed"),
    )
    fees = 0
    if _column_exists(cr, "bookconnect_therapy_session", "fee_state"):
        fees = _fee_charges(cr)
    # Fee invoices of sessions whose fee was not recorded as charged (never expected).
    orphans = _charges_from_moves(
        cr,
        SQL(
            """m.move_type = 'out_invoice' AND m.bookconnect_kind IN ('late_cancel', 'no_show')
           AND NOT EXISTS (SELECT 1 FROM bookconnect_session_charge c
                            WHERE c.move_id = m.id OR (c.session_id = s.id
                                  AND c.kind = m.bookconnect_kind AND c.state != 'cancelled'))"""
        ),
        SQL("m.bookconnect_kind"),
        SQL("m.amount_untaxed"),
    )
    refunds = _charges_from_moves(
        cr, SQL("m.move_type = 'out_refund'"), SQL("'refund'"), SQL("-m.amount_untaxed")
    )
    cr.execute(
        """
        UPDATE account_move_line l
           SET bookconnect_charge_id = c.id
          FROM bookconnect_session_charge c
         WHERE c.move_line_id = l.id
        """
    )
    cr.execute(
        """
        UPDATE ir_act_server a
           SET model_id = m.id, model_name = m.model
          FROM ir_cron c, ir_model_data d, ir_model m
         WHERE c.ir_actions_server_id = a.id
           AND d.model = 'ir.cron' AND d.res_id = c.id AND d.module = 'bookconnect_therapy'
           AND d.name IN ('ir_cron_charge_fees', 'ir_cron_detect_no_shows')
           AND m.model = 'bookconnect.fee.manager'
        """
    )
    cr.execute("DROP INDEX IF EXISTS account_move_bookconnect_session_kind_uniq")
    cr.execute("ALTER TABLE account_move DROP COLUMN IF EXISTS bookconnect_kind")
    for column in ("fee_kind", "fee_amount", "fee_state", "fee_due_at", "fee_waiver_reason"):
        cr.execute(
            SQL(
                "ALTER TABLE bookconnect_therapy_session DROP COLUMN IF EXISTS %s",
                SQL.identifier(column),
            )
        )
    _logger.info(
        "Session charges: %s from session invoices, %s fees, %s fee invoices, %s refunds",
        sessions,
        fees,
        orphans,
        refunds,
    )
