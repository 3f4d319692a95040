from odoo import _, api, fields, models
from odoo.exceptions import ValidationError


class BookconnectTopupPack(models.Model):
    """An amount a client can add to their prepaid balance in one payment."""

    _name = "bookconnect.topup.pack"
    _description = "Prepaid balance top-up pack"
    _order = "sequence, amount, id"
    _check_company_auto = True

    name = fields.Char(required=True, translate=True)
    active = fields.Boolean(default=True)
    sequence = fields.Integer(default=10)
    company_id = fields.Many2one(
        "res.company", required=True, index=True, default=lambda self: self.env.company
    )
    currency_id = fields.Many2one(related="company_id.currency_id")
    amount = fields.Monetary("Price", required=True, help="What the client pays.")
    bonus_amount = fields.Monetary(
        "Bonus", help="Extra credit given with the pack (a discount, or bonus minutes)."
    )
    credit_amount = fields.Monetary(
        "Credit", compute="_compute_credit_amount", help="What the pack adds to the balance."
    )

    @api.constrains("amount", "bonus_amount")
    def _check_amounts(self):
        for pack in self:
            if pack.amount <= 0:
                raise ValidationError(
                    _("Pack %(name)s: the price must be positive.", name=pack.name)
                )
            if pack.bonus_amount < 0:
                raise ValidationError(
                    _("Pack %(name)s: the bonus cannot be negative.", name=pack.name)
                )

    @api.depends("amount", "bonus_amount")
    def _compute_credit_amount(self):
        for pack in self:
            pack.credit_amount = pack.amount + pack.bonus_amount
