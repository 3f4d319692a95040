import logging

import phonenumbers

from odoo import _, api, fields, models
from odoo.exceptions import ValidationError

_logger = logging.getLogger(__name__)


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
    bookconnect_balance = fields.Monetary(
        "Prepaid balance",
        compute="_compute_bookconnect_balance",
        currency_field="bookconnect_balance_currency_id",
        help="Paid in advance and not used yet: the client's outstanding credits in the ledger.",
    )
    bookconnect_balance_currency_id = fields.Many2one(
        "res.currency", compute="_compute_bookconnect_balance"
    )
    bookconnect_autotopup_pack_id = fields.Many2one(
        "bookconnect.topup.pack",
        "Automatic top-up",
        help="Charged to the saved card when the balance falls below the threshold.",
    )
    bookconnect_autotopup_threshold = fields.Monetary(
        "Top up below", currency_field="bookconnect_balance_currency_id"
    )
    bookconnect_autotopup_failed = fields.Boolean(
        "Automatic top-up failed",
        copy=False,
        help="The last automatic top-up was refused: no new attempt until the client tops up "
        "or the setting is saved again.",
    )
    bookconnect_mobile = fields.Char(
        "Mobile for reminders",
        help="Stored in international (E.164) format; SMS reminders go to this number.",
    )

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            if vals.get("bookconnect_mobile"):
                vals["bookconnect_mobile"] = self._bookconnect_e164(
                    vals["bookconnect_mobile"], vals.get("country_id")
                )
        return super().create(vals_list)

    def write(self, vals):
        if vals.get("bookconnect_mobile"):
            countries = (
                {p.country_id.id for p in self}
                if "country_id" not in vals
                else {vals["country_id"]}
            )
            if len(countries) > 1:
                for partner in self:
                    partner.write(dict(vals))
                return True
            vals["bookconnect_mobile"] = self._bookconnect_e164(
                vals["bookconnect_mobile"], next(iter(countries), False)
            )
        old_policies = (
            {p: p.bookconnect_policy_id for p in self} if "bookconnect_policy_id" in vals else {}
        )
        result = super().write(vals)
        changed = self.filtered(
            lambda p: (
                p in old_policies
                and p.bookconnect_policy_id != old_policies[p]
                and p.bookconnect_policy_id
            )
        )
        if changed:
            changed._bookconnect_notify_new_terms()
        return result

    @api.model
    def _bookconnect_e164(self, number, country_id=False):
        """Parse a phone number (national numbers in the client's country, else the
        company's) and return it in E.164.

        :raise ValidationError: when it is not a valid number.
        """
        country = self.env["res.country"].browse(country_id) if country_id else False
        region = (country and country.code) or self.env.company.country_id.code or None
        try:
            parsed = phonenumbers.parse(number, region)
        except phonenumbers.NumberParseException as exc:
            raise ValidationError(
                _("%(number)s is not a phone number (%(error)s).", number=number, error=exc)
            ) from exc
        if not phonenumbers.is_valid_number(parsed):
            raise ValidationError(
                _(
                    "%(number)s is not a valid phone number%(where)s. Write it with its country "
                    "code, e.g. +44 7911 123456.",
                    number=number,
                    where=_(" in %(country)s", country=country.name) if country else "",
                )
            )
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)

    def _bookconnect_notify_new_terms(self):
        """Tell clients the terms that apply to their future sessions from now on."""
        template = self.env.ref("bookconnect_therapy.mail_template_policy_changed")
        template.sudo().send_mail_batch(
            self.filtered("email").ids, email_layout_xmlid="mail.mail_notification_light"
        )

    @api.depends_context("company")
    def _compute_bookconnect_balance(self):
        company = self.env.company
        balances = self.env["bookconnect.prepaid.balance"]._balances(self, company)
        for partner in self:
            partner.bookconnect_balance = balances[partner]
            partner.bookconnect_balance_currency_id = company.currency_id

    def _bookconnect_payment_tokens(self, company):
        """The newest usable saved card of each of these clients, in one search.

        :return: dict commercial partner -> payment.token.
        """
        commercial = self.commercial_partner_id
        # sudo: tokens are read to decide how to collect, never shown here
        tokens = (
            self.env["payment.token"]
            .sudo()
            .search(
                [
                    ("partner_id", "child_of", commercial.ids),
                    ("provider_id.company_id", "=", company.id),
                    ("provider_id.state", "in", ("enabled", "test")),
                    ("active", "=", True),
                ],
                order="id desc",
            )
        )
        found = {}
        for token in tokens:
            found.setdefault(token.partner_id.commercial_partner_id, token)
        return found

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
