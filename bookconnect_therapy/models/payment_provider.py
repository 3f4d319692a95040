from odoo import _, models
from odoo.exceptions import ValidationError

# Smallest amount Stripe charges per currency (its "minimum charge amount"); other currencies
# default to half a unit, which is the minimum of most two-decimal currencies.
STRIPE_MINIMUM_CHARGE = {
    "USD": 0.50,
    "EUR": 0.50,
    "GBP": 0.30,
    "CHF": 0.50,
    "CAD": 0.50,
    "AUD": 0.50,
    "NZD": 0.50,
    "SGD": 0.50,
    "HKD": 4.00,
    "JPY": 50.0,
    "DKK": 2.50,
    "NOK": 3.00,
    "SEK": 3.00,
    "PLN": 2.00,
    "CZK": 15.00,
    "HUF": 175.0,
    "MXN": 10.00,
    "INR": 0.50,
    "BRL": 0.50,
    "AED": 2.00,
    "RON": 2.00,
    "BGN": 1.00,
    "THB": 10.00,
    "MYR": 2.00,
}


class PaymentProvider(models.Model):
    _inherit = "payment.provider"

    def _bookconnect_charge_refusal(self):
        """Why this provider must not charge saved cards automatically, or ``False``.

        A Stripe provider without a webhook secret cannot tell us reliably what happened to a
        payment, so the product refuses to charge through it unattended.
        """
        self.ensure_one()
        if self.state not in ("enabled", "test"):
            return _("the payment provider %(name)s is disabled", name=self.name)
        if self.code == "stripe" and not self.sudo().stripe_webhook_secret:
            return _(
                "automatic charging is off: the Stripe provider has no webhook secret "
                "(Accounting > Configuration > Payment Providers > Stripe)"
            )
        return False

    def _bookconnect_minimum_charge(self, currency):
        """The smallest amount this provider charges on its own in ``currency``."""
        self.ensure_one()
        if self.code == "stripe":
            return STRIPE_MINIMUM_CHARGE.get(currency.name, 0.50)
        return currency.rounding

    def _stripe_make_request(
        self, endpoint, payload=None, method="POST", offline=False, idempotency_key=None
    ):
        """Stripe's own errors (``api_error``: the request may or may not have gone through)
        are raised in unattended flows, so that the caller retries with the same idempotency
        key instead of concluding the card was refused and asking the client to pay again.

        The transactions of the product give the key of requests Odoo sends without one
        (captures, voids, refunds) in the context."""
        if method == "POST" and not idempotency_key:
            idempotency_key = self.env.context.get("bookconnect_idempotency_key")
        response = super()._stripe_make_request(
            endpoint,
            payload=payload,
            method=method,
            offline=offline,
            idempotency_key=idempotency_key,
        )
        error = response.get("error") if isinstance(response, dict) else None
        if offline and isinstance(error, dict) and error.get("type") == "api_error":
            raise ValidationError(
                _(
                    "Stripe: temporary error, the outcome is unknown (%(message)s)",
                    message=error.get("message") or error.get("type"),
                )
            )
        return response
