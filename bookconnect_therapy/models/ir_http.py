from odoo import models
from odoo.http import request


class IrHttp(models.AbstractModel):
    _inherit = "ir.http"

    @classmethod
    def _serve_fallback(cls):
        """A path no route serves is looked up as an attachment URL, and PostgreSQL refuses
        text holding a NUL character: such a path is simply not found, not a server error."""
        if "\x00" in request.httprequest.path:
            return None
        return super()._serve_fallback()
