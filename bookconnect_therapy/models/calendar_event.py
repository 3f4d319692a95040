import uuid

from odoo import Command, _, api, fields, models
from odoo.exceptions import UserError

from .bookconnect_therapy_session import CALENDAR_SYNCED

SYNCED_FIELDS = ("start", "stop")


class CalendarEvent(models.Model):
    _inherit = "calendar.event"

    bookconnect_session_id = fields.Many2one(
        "bookconnect.therapy.session",
        "Therapy session",
        index="btree_not_null",
        ondelete="cascade",
        copy=False,
        groups="bookconnect_therapy.group_therapist",
    )

    def write(self, vals):
        result = super().write(vals)
        if self._bookconnect_synced():
            return result
        therapy = self.sudo().filtered("bookconnect_session_id")
        if not therapy:
            return result
        if any(name in vals for name in SYNCED_FIELDS):
            therapy._bookconnect_move_sessions()
        if "active" in vals and not vals["active"]:
            therapy._bookconnect_cancel_from_calendar()
        return result

    @api.ondelete(at_uninstall=False)
    def _bookconnect_cancel_sessions(self):
        if self._bookconnect_synced():
            return
        self.sudo()._bookconnect_cancel_from_calendar()

    def _bookconnect_cancel_from_calendar(self):
        """The therapist removed these events: the practice cancelled their sessions, nothing
        is due. A session that has started or ended keeps its event."""
        sessions = self.bookconnect_session_id
        open_sessions = sessions.filtered(lambda s: s.state == "scheduled")
        started = (sessions - open_sessions).filtered(
            lambda s: s.state not in ("cancelled", "late_cancelled", "no_show")
        )
        if started:
            raise UserError(
                _(
                    "Session %(name)s has started or ended: its calendar event is kept.",
                    name=started[0].name,
                )
            )
        open_sessions._cancel(by="practice")

    def _bookconnect_synced(self):
        """The change comes from the session itself: nothing to echo back to it."""
        return self.env.context.get(CALENDAR_SYNCED)

    @api.model
    def _bookconnect_prepare_session_values(self, session):
        """Values of the calendar event of ``session``: private, busy, with its two
        participants and its own video call link."""
        token = uuid.uuid4().hex
        return {
            "name": _("Therapy session: %(client)s", client=session.partner_id.name),
            "start": session.start,
            "stop": session.stop,
            "user_id": session.therapist_id.id,
            "partner_ids": [Command.set(session._participant_partners().ids)],
            "privacy": "private",
            "show_as": "busy",
            "access_token": token,
            "videocall_location": f"{session.get_base_url()}/calendar/join_videocall/{token}",
            "bookconnect_session_id": session.id,
            "res_model_id": self.env["ir.model"]._get_id(session._name),
            "res_id": session.id,
        }

    @api.model
    def _bookconnect_sync_from_sessions(self, sessions):
        """Follow the sessions' new times and client on their calendar events."""
        for session in sessions.filtered("calendar_event_id"):
            values = {"start": session.start, "stop": session.stop}
            event = session.calendar_event_id.sudo()
            if session.partner_id not in event.partner_ids:
                values["partner_ids"] = [Command.set(session._participant_partners().ids)]
            event.with_context(**{CALENDAR_SYNCED: True}).write(values)

    def _bookconnect_move_sessions(self):
        for event in self:
            session = event.bookconnect_session_id
            if (session.start, session.stop) == (event.start, event.stop):
                continue
            if session.state != "scheduled":
                raise UserError(
                    _(
                        "Session %(name)s has already started or ended: it cannot be moved.",
                        name=session.name,
                    )
                )
            session.with_context(**{CALENDAR_SYNCED: True}).write(
                {"start": event.start, "stop": event.stop}
            )

    def _create_videocall_channel(self):
        therapy = self.sudo().filtered("bookconnect_session_id")
        for event in therapy:
            # Created as the therapist: Odoo adds the creating user to a new channel, and the
            # call of a therapy session must hold its two participants and nobody else.
            session = event.bookconnect_session_id
            channel = (
                self.env["discuss.channel"]
                .with_user(session.therapist_id)
                .sudo()
                # Linked as it is created: the participants' Discuss learns of the channel
                # at once, with what is particular to a session's call (no invitations).
                .with_context(default_bookconnect_session_id=session.id)
                .create_group(
                    session._participant_partners().ids,
                    # voice and chat sessions open without video
                    default_display_mode="video_full_screen"
                    if session.channel == "video"
                    else False,
                    name=event.name,
                )
            )
            event.videocall_channel_id = channel
        others = self - therapy
        return super(CalendarEvent, others)._create_videocall_channel() if others else None
