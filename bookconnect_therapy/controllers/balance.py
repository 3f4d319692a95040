from werkzeug.exceptions import NotFound
from werkzeug.urls import url_encode

from odoo import http
from odoo.http import request
from odoo.tools import format_amount

from odoo.addons.payment import utils as payment_utils

from ..models.bookconnect_topup_pack import topup_reference_prefix
from .portal import TherapyPortal


class PrepaidBalancePortal(TherapyPortal):
    """The prepaid balance in the portal: its page, its entry on /my, and top-ups."""

    def _bookconnect_is_prepaid(self, partner_sudo, balance):
        """Whether the prepaid balance concerns this client: a balance that is not zero, or a
        prepaid policy of their own or on one of their sessions."""
        if not request.env.company.currency_id.is_zero(balance):
            return True
        commercial = partner_sudo.commercial_partner_id
        if (partner_sudo | commercial).bookconnect_policy_id.filtered(
            lambda policy: policy.prepayment == "balance"
        ):
            return True
        return bool(
            request.env["bookconnect.therapy.session"]
            .sudo()
            .search_count(
                [
                    ("partner_id", "child_of", commercial.id),
                    ("policy_id.prepayment", "=", "balance"),
                ],
                limit=1,
            )
        )

    def _prepare_home_portal_values(self, counters):
        values = super()._prepare_home_portal_values(counters)
        if "bookconnect_balance" in counters:
            # sudo: the balance is read from the client's own ledger lines
            partner_sudo = request.env.user.partner_id.sudo()
            balance = partner_sudo.bookconnect_balance
            # 0 hides the entry on /my (the portal hides counters at 0): a client who never
            # prepays has nothing to see there.
            values["bookconnect_balance"] = (
                format_amount(request.env, balance, request.env.company.currency_id)
                if self._bookconnect_is_prepaid(partner_sudo, balance)
                else 0
            )
        return values

    @http.route("/my/balance", type="http", auth="user", website=True)
    def portal_my_balance(self, **kwargs):
        """The client's prepaid balance, the packs to top it up, and its history."""
        partner = request.env.user.partner_id
        company = request.env.company
        # sudo: the client reads their own receivable lines, which portal users may not browse
        partner_sudo = partner.sudo()
        history = request.env["bookconnect.prepaid.balance"].sudo()._history(partner_sudo, company)
        values = self._prepare_portal_layout_values()
        values.update(
            {
                "page_name": "bookconnect_balance",
                "balance": partner_sudo.with_company(company).bookconnect_balance,
                "currency": company.currency_id,
                "packs": request.env["bookconnect.topup.pack"].search(
                    [("company_id", "=", company.id)]
                ),
                "history": list(reversed(history)),
                "due": sum(
                    request.env["account.move"]
                    .sudo()
                    .search(
                        [
                            ("commercial_partner_id", "=", partner.commercial_partner_id.id),
                            ("company_id", "=", company.id),
                            ("move_type", "=", "out_invoice"),
                            ("state", "=", "posted"),
                            ("payment_state", "in", ("not_paid", "partial")),
                        ]
                    )
                    .mapped("amount_residual")
                ),
                "autotopup_pack": partner_sudo.bookconnect_autotopup_pack_id,
                "autotopup_failed": partner_sudo.bookconnect_autotopup_failed,
                "shortfalls": self._bookconnect_shortfalls(partner),
                **self._bookconnect_display_values(),
            }
        )
        return request.render("bookconnect_therapy.portal_my_balance", values)

    @http.route("/my/balance/topup/<int:pack_id>", type="http", auth="user", website=True)
    def portal_balance_topup(self, pack_id, **kwargs):
        """Pay a pack through Odoo's payment page; the payment becomes prepaid balance."""
        pack = request.env["bookconnect.topup.pack"].browse(pack_id).exists()
        if not pack:
            raise NotFound()
        partner = request.env.user.partner_id
        params = {
            "reference": topup_reference_prefix(partner, pack),
            "amount": pack.amount,
            "currency_id": pack.currency_id.id,
            "partner_id": partner.id,
            "company_id": pack.company_id.id,
            "access_token": payment_utils.generate_access_token(
                partner.id, pack.amount, pack.currency_id.id
            ),
        }
        return request.redirect(f"/payment/pay?{url_encode(params)}")
