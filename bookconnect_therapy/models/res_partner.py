from odoo import fields, models


class ResPartner(models.Model):
    _inherit = "res.partner"

    bookconnect_policy_id = fields.Many2one(
        "bookconnect.billing.policy",
        "Therapy billing policy",
        help="Policy for this client's sessions; empty: the therapist's or the practice's.",
    )
    bookconnect_session_ids = fields.One2many(
        "bookconnect.therapy.session", "partner_id", "Therapy sessions"
    )
    bookconnect_session_count = fields.Integer(compute="_compute_bookconnect_session_count")

    def _bookconnect_payment_token(self, company=None):
        """The client's saved card usable off-session for ``company`` (newest first), or an
        empty recordset. Tokens belong to the commercial partner's family."""
        self.ensure_one()
        company = company or self.env.company
        # sudo: tokens are read to decide how to collect, never shown here
        return (
            self.env["payment.token"]
            .sudo()
            .search(
                [
                    ("partner_id", "child_of", self.commercial_partner_id.id),
                    ("provider_id.company_id", "=", company.id),
                    ("provider_id.state", "in", ("enabled", "test")),
                    ("active", "=", True),
                ],
                order="id desc",
                limit=1,
            )
        )

    def _compute_bookconnect_session_count(self):
        counts = dict(
            self.env["bookconnect.therapy.session"]._read_group(
                [("partner_id", "in", self.ids)], ["partner_id"], ["__count"]
            )
        )
        for partner in self:
            partner.bookconnect_session_count = counts.get(partner, 0)
