from odoo import api, models


class DiscussChannelRtcSession(models.Model):
    _inherit = "discuss.channel.rtc.session"

    @api.model_create_multi
    def create(self, vals_list):
        rtc_sessions = super().create(vals_list)
        started = self.env["bookconnect.metered.call"]._open_discuss_segments(rtc_sessions)
        started._mark_in_progress()
        return rtc_sessions

    def unlink(self):
        self.env["bookconnect.metered.call"]._close_discuss_segments(self)
        return super().unlink()
