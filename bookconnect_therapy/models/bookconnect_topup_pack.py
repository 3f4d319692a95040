from odoo import _, api, fields, models
from odoo.exceptions import ValidationError

# Top-ups are named TOPUP-<client>-<pack>[-n]: Odoo's generic payment page, which portal top-ups
# go through, only lets us choose the reference, so it carries the client and the pack.
TOPUP_PREFIX = "TOPUP-"


def topup_reference_prefix(partner, pack):
    """The reference (before Odoo numbers repeats) of ``partner``'s top-up with ``pack``."""
    return f"{TOPUP_PREFIX}{partner.commercial_partner_id.id}-{pack.id}"


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

    @api.model
    def _from_topup(self, tx):
        """The pack top-up transaction ``tx`` paid for, when its reference and amount match."""
        parts = (tx.reference or "").split("-")
        if tx.bookconnect_purpose != "topup" or len(parts) < 3 or not parts[2].isdigit():
            return self.browse()
        pack = self.sudo().browse(int(parts[2])).exists()
        if (
            pack
            and pack.currency_id == tx.currency_id
            and not pack.currency_id.compare_amounts(pack.amount, tx.amount)
        ):
            return pack
        return self.browse()
