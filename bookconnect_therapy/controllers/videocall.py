from werkzeug.exceptions import Forbidden, NotFound
from werkzeug.urls import url_encode

from odoo import http
from odoo.exceptions import UserError
from odoo.http import request
from odoo.tools import consteq

from odoo.addons.calendar.controllers.main import CalendarController
from odoo.addons.mail.controllers.discuss.public_page import PublicPageController


class TherapyCalendarController(CalendarController):
    @http.route()
    def calendar_join_videocall(self, access_token):
        """A therapy session's call admits its therapist and its client only, signed in;
        Odoo's stock link would let anyone holding it in as a guest."""
        # sudo: looking the event up by its unguessable token, as the stock route does
        event_sudo = (
            request.env["calendar.event"]
            .sudo()
            .search([("access_token", "=", access_token)], limit=1)
        )
        session_sudo = event_sudo.bookconnect_session_id
        if not session_sudo:
            return super().calendar_join_videocall(access_token)
        if request.env.user._is_public():
            redirect = f"/calendar/join_videocall/{access_token}"
            return request.redirect(f"/web/login?{url_encode({'redirect': redirect})}")
        if request.env.user.partner_id not in session_sudo._participant_partners():
            raise Forbidden()
        if request.env.user.partner_id == session_sudo.partner_id:
            try:
                session_sudo.call_id._check_can_start()
            except UserError as exc:
                return request.render(
                    "bookconnect_therapy.portal_cannot_join", {"message": str(exc)}, status=402
                )
        if not event_sudo.videocall_channel_id:
            event_sudo._create_videocall_channel()
        return request.redirect(f"/discuss/channel/{event_sudo.videocall_channel_id.id}")


class TherapyPublicPageController(PublicPageController):
    @http.route()
    def discuss_channel_invitation(self, channel_id, invitation_token):
        # sudo: checking whether the channel belongs to a therapy session
        channel_sudo = request.env["discuss.channel"].sudo().browse(channel_id).exists()
        session_sudo = channel_sudo.bookconnect_session_id
        if session_sudo and (
            not channel_sudo.uuid
            or not consteq(channel_sudo.uuid, invitation_token)
            or request.env.user.partner_id not in session_sudo._participant_partners()
        ):
            raise NotFound()
        return super().discuss_channel_invitation(channel_id, invitation_token)
