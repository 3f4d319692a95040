import logging

from werkzeug.exceptions import Forbidden

from odoo.http import request

from odoo.addons.payment_stripe import utils as stripe_utils
from odoo.addons.payment_stripe.controllers.main import StripeController

_logger = logging.getLogger(__name__)


class TherapyStripeController(StripeController):
    def _verify_notification_signature(self, tx_sudo):
        """Refuse every webhook event while the provider has no webhook secret (Odoo's own
        check lets them through unverified), and a missing signature header cleanly."""
        if not stripe_utils.get_webhook_secret(tx_sudo.provider_id):
            _logger.warning("refused a Stripe webhook event: no webhook secret is configured")
            raise Forbidden()
        header = request.httprequest.headers.get("Stripe-Signature", "")
        if not header or any(entry.count("=") != 1 for entry in header.split(",")):
            _logger.warning("refused a Stripe webhook event without a well-formed signature")
            raise Forbidden()
        return super()._verify_notification_signature(tx_sudo)
