from decimal import Decimal

from odoo import _, api, fields, models

from ..core import minutes_affordable


class BookconnectPrepaidWatch(models.AbstractModel):
    """Prepaid calls, watched live: how many minutes the client's balance still pays for,
    the warnings to both people before it runs out, and the end of the call when the policy
    says so."""

    _name = "bookconnect.prepaid.watch"
    _description = "Therapy prepaid calls, watched live"

    @api.model
    def _remaining_minutes(self, session, now=None):
        """Minutes (a float) the client's prepaid balance still pays for in this session: the
        whole minutes the balance buys, less the time used so far; ``None`` when time is not
        limited by money (not prepaid, or free). The call is stopped at a minute boundary
        the balance covers, so that nobody ends up owing or owed for a started minute."""
        policy = session.policy_id
        if policy.prepayment != "balance":
            return None
        partner = session.partner_id
        balance = self.env["bookconnect.prepaid.balance"]._balances(partner, session.company_id)[
            partner
        ]
        affordable = minutes_affordable(
            Decimal(str(balance)), policy._pricing_rules(session.channel)
        )
        if affordable is None:
            return None
        return affordable - session.call_id._live_seconds(now) / 60

    @api.model
    def _cron_watch_prepaid(self):
        """Watch prepaid calls: warn both people a few minutes before the balance runs out,
        then end the call or let it run, as the policy says."""
        now = fields.Datetime.now()
        Session = self.env["bookconnect.therapy.session"]
        sessions = Session.sudo().search(
            [("state", "=", "in_progress"), ("policy_id.prepayment", "=", "balance")]
        )
        to_end = Session.browse()
        for session in sessions:
            remaining = self._remaining_minutes(session, now)
            if remaining is None:
                continue
            policy = session.policy_id
            if remaining <= 0:
                if policy.overrun == "end":
                    to_end |= session
                elif not session.overrun_notified:
                    self._tell_both(
                        session,
                        _(
                            "The prepaid balance has run out. The session continues; the extra "
                            "time is billed separately."
                        ),
                    )
                    session.overrun_notified = True
            elif remaining <= policy.low_balance_warning_minutes and not session.balance_warned:
                self._tell_both(
                    session,
                    _(
                        "About %(minutes)s minutes of prepaid time are left.",
                        minutes=max(int(remaining), 1),
                    )
                    + " "
                    + (
                        _("The call will end then.")
                        if policy.overrun == "end"
                        else _("After that, the extra time is billed separately.")
                    ),
                )
                session.balance_warned = True
        for session in to_end:
            self._tell_both(session, _("The prepaid balance has run out: the call ends now."))
        self._disconnect_call(to_end)
        to_end._end_sessions()

    def _tell_both(self, sessions, text):
        """Say something to the therapist and the client of ``sessions``: in the call's chat,
        and on record."""
        for session in sessions:
            channel = session.calendar_event_id.sudo().videocall_channel_id
            if channel:
                channel.message_post(
                    body=text,
                    message_type="comment",
                    subtype_xmlid="mail.mt_comment",
                    author_id=self.env.ref("base.partner_root").id,
                )
            session.message_post(body=text)

    def _disconnect_call(self, sessions):
        """End the video calls of ``sessions`` for everyone in them."""
        channels = sessions.sudo().calendar_event_id.videocall_channel_id
        if channels.rtc_session_ids:
            channels.rtc_session_ids.action_disconnect()
