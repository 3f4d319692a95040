import logging

from werkzeug.exceptions import Forbidden

from odoo.addons.payment_stripe import utils as stripe_utils
from odoo.addons.payment_stripe.controllers.main import StripeController

_logger = logging.getLogger(__name__)


class TherapyStripeController(StripeController):
    def _verify_notification_signature(self, tx_sudo):
        """Refuse every webhook event while the provider has no webhook secret (Odoo's own
        check lets them through unverified), and a missing or malformed signature header with
        a 403 instead of the error Odoo's parsing of the header raises."""
        if not stripe_utils.get_webhook_secret(tx_sudo.provider_id):
            _logger.warning("refused a Stripe webhook event: no webhook secret is configured")
            raise Forbidden()
        try:
            return super()._verify_notification_signature(tx_sudo)
        except (KeyError, ValueError) as exc:
            # The header is missing (KeyError) or not ``k=v,k=v`` (ValueError, while unpacking).
            _logger.warning("refused a Stripe webhook event without a well-formed signature")
            raise Forbidden() from exc

    @staticmethod
    def _create_refund_tx_from_refund(source_tx_sudo, refund_object):
        """Refunds Stripe reports for the part of a card hold that was let go are recorded as
        releases, never booked as money given back."""
        release = source_tx_sudo._bookconnect_is_hold_release(refund_object)
        refund_tx_sudo = StripeController._create_refund_tx_from_refund(
            source_tx_sudo, refund_object
        )
        if release:
            refund_tx_sudo.bookconnect_purpose = "release"
        return refund_tx_sudo
