from odoo import _, api, fields, models
from odoo.exceptions import AccessError


class DiscussChannel(models.Model):
    _inherit = "discuss.channel"

    bookconnect_session_id = fields.Many2one(
        "bookconnect.therapy.session",
        "Therapy session",
        index="btree_not_null",
        ondelete="set null",
        copy=False,
    )

    @api.model
    def _bookconnect_session_chat(self, session):
        """The channel of ``session``'s chat (and call), made the first time it is asked."""
        event = session.sudo().calendar_event_id
        if not event.videocall_channel_id:
            event._create_videocall_channel()
        return event.videocall_channel_id

    @api.model
    def _bookconnect_open_chat(self, session):
        """Open ``session``'s chat, once: its time with both present is billed from now.

        :return: the chat's channel.
        """
        channel = self._bookconnect_session_chat(session)
        if not session.chat_open:
            session.write({"chat_open": True})
            session.call_id._open_chat_segments("therapist")._mark_in_progress()
            self._bookconnect_announce(session, _("The session is open."))
        return channel

    @api.model
    def _bookconnect_announce(self, session, body):
        """Post ``body`` in ``session``'s chat, as the current user."""
        self._bookconnect_session_chat(session).message_post(
            body=body,
            message_type="comment",
            subtype_xmlid="mail.mt_comment",
            author_id=self.env.user.partner_id.id,
        )

    def _add_members(self, *, guests=None, partners=None, users=None, **kwargs):
        """A therapy session's call admits its therapist and its client, nobody else."""
        for channel in self.sudo().filtered("bookconnect_session_id"):
            allowed = channel.bookconnect_session_id._participant_partners()
            incoming = (partners or self.env["res.partner"]) | (
                users.partner_id if users else self.env["res.partner"]
            )
            if guests or incoming - allowed:
                raise AccessError(
                    _("Only the therapist and the client can join a therapy session's call.")
                )
        return super()._add_members(guests=guests, partners=partners, users=users, **kwargs)

    def _to_store(self, store):
        result = super()._to_store(store)
        # The Discuss client hides "Invite" where _add_members would refuse anyone new.
        for channel in self.filtered("bookconnect_session_id"):
            store.add(channel, {"bookconnect_invitations_closed": True})
        return result

    def message_post(self, **kwargs):
        message = super().message_post(**kwargs)
        if self.bookconnect_session_id and message.author_id:
            self.sudo().bookconnect_session_id.call_id._chat_presence(message.author_id)
        return message
