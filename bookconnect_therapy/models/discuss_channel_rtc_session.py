from datetime import timedelta

from odoo import api, fields, models


class DiscussChannelRtcSession(models.Model):
    _inherit = "discuss.channel.rtc.session"

    @api.model_create_multi
    def create(self, vals_list):
        rtc_sessions = super().create(vals_list)
        rtc_sessions._bookconnect_open_segments()
        return rtc_sessions

    def unlink(self):
        self._bookconnect_close_segments()
        return super().unlink()

    def _bookconnect_open_segments(self):
        """Start measuring the therapist or client who joined a therapy session's call."""
        therapy = self.sudo().filtered(
            lambda r: r.channel_id.bookconnect_session_id.state in ("scheduled", "in_progress")
        )
        values = []
        now = fields.Datetime.now()
        for rtc in therapy:
            session = rtc.channel_id.bookconnect_session_id
            role = session._participant_role(rtc.partner_id)
            if not role:
                continue  # not one of the two: never metered
            values.append(
                {
                    "call_id": session.call_id.id,
                    "role": role,
                    "partner_id": rtc.partner_id.id,
                    "start": now,
                    "last_seen": now,
                    "source": "discuss",
                    "rtc_session_id": rtc.id,
                }
            )
        if values:
            segments = self.env["bookconnect.call.segment"].sudo().create(values)
            segments.call_id._mark_sessions_in_progress()

    def _bookconnect_close_segments(self):
        """Close the segments of the connections being deleted.

        A connection removed because it went quiet (garbage collection of dead sessions) ends
        at its last heartbeat, ``write_date``; one removed while alive (the person hung up)
        ends now.
        """
        segments = (
            self.env["bookconnect.call.segment"]
            .sudo()
            .search([("rtc_session_id", "in", self.ids), ("end", "=", False)])
        )
        if not segments:
            return
        now = fields.Datetime.now()
        quiet_before = now - timedelta(minutes=1)
        beats = {rtc.id: rtc.write_date for rtc in self.sudo()}
        for segment in segments:
            beat = beats.get(segment.rtc_session_id)
            end = beat if beat and beat < quiet_before else now
            end = max(end, segment.start)
            segment.write({"end": end, "last_seen": end})
