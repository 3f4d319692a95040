import logging
from datetime import timedelta

from odoo import _, api, fields, models

from ..core import parse_positive_ints

_logger = logging.getLogger(__name__)

# How far ahead session reminders look: the longest offset a practice may set is a week.
REMINDER_HORIZON = timedelta(days=8)
LIGHT_LAYOUT = "mail.mail_notification_light"


class BookconnectReminderManager(models.AbstractModel):
    """What the practice tells clients on its own initiative: booking confirmations,
    session reminders (email and SMS) and reminders of unpaid invoices. Each reminder is
    claimed in ``bookconnect.reminder.log`` first, so it goes out once."""

    _name = "bookconnect.reminder.manager"
    _description = "Therapy reminders"

    # ------------------------------------------------------------------
    # Emails to clients
    # ------------------------------------------------------------------

    @api.model
    def _notify_clients(self, sessions, template_xmlid):
        """Email the clients of ``sessions`` (those with an address) with a session
        template, in their language."""
        sessions = sessions.filtered(lambda s: s.partner_id.email)
        if sessions:
            self.env.ref(template_xmlid).sudo().send_mail_batch(
                sessions.ids, email_layout_xmlid=LIGHT_LAYOUT
            )

    @api.model
    def _send_booking_confirmations(self, sessions):
        """Confirm ``sessions`` to their clients, with the terms of their policy."""
        if sessions:
            template = self.env.ref("bookconnect_therapy.mail_template_session_confirmation")
            template.sudo().send_mail_batch(sessions.ids, email_layout_xmlid=LIGHT_LAYOUT)

    @api.model
    def _unsent(self, rows):
        """The reminder ``rows`` not in the log yet: a reminder stays due until its moment
        has passed, and a batch must not be spent on those already sent."""
        if not rows:
            return rows
        logs = self.env["bookconnect.reminder.log"].search_read(
            [
                ("kind", "in", list({row["kind"] for row in rows})),
                ("session_id", "in", list({row["session_id"] for row in rows})),
            ],
            ["kind", "session_id", "invoice_id", "offset"],
            load=None,
        )
        sent = {
            (log["kind"], log["session_id"], log["invoice_id"] or False, log["offset"])
            for log in logs
        }
        return [
            row
            for row in rows
            if (row["kind"], row["session_id"], row.get("invoice_id") or False, row["offset"])
            not in sent
        ]

    # ------------------------------------------------------------------
    # Session reminders
    # ------------------------------------------------------------------

    @api.model
    def _reminder_offsets(self, session):
        """Hours before the start at which ``session`` is reminded: its policy's, else the
        practice's."""
        return session.policy_id._reminder_hours() or parse_positive_ints(
            session.company_id.bookconnect_reminder_hours
        )

    @api.model
    def _due_session_reminders(self, now):
        """Reminder rows due at ``now``: per session, the nearest offset that has come, and
        only if the session was booked before it (otherwise the booking confirmation just
        told the client)."""
        sessions = self.env["bookconnect.therapy.session"].search(
            [
                ("state", "=", "scheduled"),
                ("start", ">", now),
                ("start", "<=", now + REMINDER_HORIZON),
            ],
            order="start, id",
        )
        rows = []
        for session in sessions:
            for offset in sorted(self._reminder_offsets(session)):
                due_at = session.start - timedelta(hours=offset)
                if due_at <= now:
                    if due_at >= session.create_date:
                        rows.append({"kind": "session", "session_id": session.id, "offset": offset})
                    break
        return rows

    @api.model
    def _cron_send_reminders(self, batch_size=200):
        """Remind clients of their sessions, once per offset (e.g. 24 h and 1 h before), by
        email with the join link and by SMS where they have a valid mobile number. Reports
        progress in batches."""
        rows = self._unsent(self._due_session_reminders(fields.Datetime.now()))
        remaining = max(len(rows) - batch_size, 0)
        Log = self.env["bookconnect.reminder.log"]
        claimed = Log._claim(rows[:batch_size])
        sessions = self.env["bookconnect.therapy.session"].browse(
            [row["session_id"] for row in claimed]
        )
        if sessions:
            template = self.env.ref("bookconnect_therapy.mail_template_session_reminder")
            template.send_mail_batch(sessions.ids, email_layout_xmlid=LIGHT_LAYOUT)
        logs = Log.browse([row["id"] for row in claimed])
        for log, session in zip(logs, sessions, strict=True):
            log.channels = ", ".join(["email", self._send_sms_reminder(session)])
        self.env["ir.cron"]._notify_progress(done=len(claimed), remaining=remaining)

    @api.model
    def _sms_available(self):
        """SMS goes through Odoo's ``sms`` module, an optional companion of this addon."""
        return "sms.sms" in self.env

    @api.model
    def _send_sms_reminder(self, session):
        """Text the client of ``session``; return what happened, for the log."""
        number = session.partner_id.bookconnect_mobile
        if not number:
            return _("no SMS: no valid mobile number")
        if not self._sms_available():
            _logger.info(
                "session %s: SMS reminder skipped, the sms module is not installed", session.name
            )
            return _("no SMS: the SMS module is not installed")
        tz = session.partner_id.tz or session.therapist_id.tz or "UTC"
        when = fields.Datetime.context_timestamp(session.with_context(tz=tz), session.start)
        body = _(
            "Reminder: your session with %(therapist)s is on %(when)s. Join: %(link)s",
            therapist=session.therapist_id.name,
            when=when.strftime("%d %b %H:%M"),
            link=session.videocall_url or "",
        )
        session._message_sms(
            body,
            partner_ids=session.partner_id.ids,
            sms_pid_to_number={session.partner_id.id: number},
            put_in_queue=True,
        )
        return "sms"

    # ------------------------------------------------------------------
    # Payment reminders
    # ------------------------------------------------------------------

    @api.model
    def _due_payment_reminders(self, today):
        """Reminder rows due ``today`` for unpaid session invoices: per invoice, the latest
        of its company's reminder days (after the due date) that has come."""
        rows = []
        companies = self.env["res.company"].search([("bookconnect_payment_reminders", "=", True)])
        for company in companies:
            days = parse_positive_ints(company.bookconnect_payment_reminder_days)
            if not days:
                continue
            invoices = self.env["account.move"].search(
                [
                    ("company_id", "=", company.id),
                    ("bookconnect_session_id", "!=", False),
                    ("move_type", "=", "out_invoice"),
                    ("state", "=", "posted"),
                    ("payment_state", "in", ("not_paid", "partial")),
                    ("invoice_date_due", "<=", today - timedelta(days=min(days))),
                ],
                order="invoice_date_due, id",
            )
            for invoice in invoices:
                late = (today - invoice.invoice_date_due).days
                due_offsets = [d for d in days if d <= late]
                if due_offsets:
                    rows.append(
                        {
                            "kind": "payment",
                            "session_id": invoice.bookconnect_session_id.id,
                            "invoice_id": invoice.id,
                            "offset": max(due_offsets),
                        }
                    )
        return rows

    @api.model
    def _cron_payment_reminders(self, batch_size=200):
        """Remind clients of unpaid session invoices on the practice's schedule (days after
        the due date), with the payment link; nothing once paid. Reports progress in
        batches."""
        rows = self._unsent(self._due_payment_reminders(fields.Date.context_today(self)))
        remaining = max(len(rows) - batch_size, 0)
        Log = self.env["bookconnect.reminder.log"]
        claimed = Log._claim(rows[:batch_size])
        invoices = self.env["account.move"].browse([row["invoice_id"] for row in claimed])
        if invoices:
            template = self.env.ref("bookconnect_therapy.mail_template_payment_reminder")
            template.send_mail_batch(invoices.ids, email_layout_xmlid=LIGHT_LAYOUT)
            Log.browse([row["id"] for row in claimed]).write({"channels": "email"})
        self.env["ir.cron"]._notify_progress(done=len(claimed), remaining=remaining)
