from odoo import models


class DiscussChannelMember(models.Model):
    _inherit = "discuss.channel.member"

    def _mark_as_read(self, last_message_id, sync=False):
        result = super()._mark_as_read(last_message_id, sync=sync)
        # Reading an open therapy chat counts as being there.
        if self.channel_id.bookconnect_session_id and self.partner_id:
            self.channel_id.sudo().bookconnect_session_id.call_id._chat_presence(self.partner_id)
        return result
