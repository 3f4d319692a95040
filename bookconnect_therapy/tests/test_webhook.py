import hashlib
import hmac
import json
import time

from odoo.tests import HttpCase, tagged
from odoo.tools import mute_logger

from .common import StripeSessionCase

WEBHOOK = "/payment/stripe/webhook"


@tagged("post_install", "-at_install", "bookconnect")
class TestStripeWebhooks(StripeSessionCase, HttpCase):
    def setUp(self):
        super().setUp()
        # A charge sent to Stripe that is still processing: the webhook tells how it ends.
        self.stripe_answers["payment_intents"] = lambda payload: {
            "id": "pi_webhook",
            "status": "processing",
            "payment_method": {"id": "pm_card_visa", "type": "card", "card": {"brand": "visa"}},
        }
        self.therapy = self.held(30)
        self.therapy.action_end_session()
        self.tx = self.therapy.transaction_ids
        self.assertEqual(self.tx.state, "pending")

    def event(self, status="succeeded", kind="payment_intent.succeeded"):
        return {
            "id": "evt_1",
            "type": kind,
            "data": {
                "object": {
                    "id": "pi_webhook",
                    "object": "payment_intent",
                    "description": self.tx.reference,
                    "status": status,
                    "payment_method": "pm_card_visa",
                    "amount": 3000,
                }
            },
        }

    def post(self, event, secret="whsec_bookconnect", signature=None, timestamp=None):
        body = json.dumps(event)
        timestamp = int(time.time()) if timestamp is None else timestamp
        if signature is None:
            digest = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256)
            signature = f"t={timestamp},v1={digest.hexdigest()}"
        headers = {"Content-Type": "application/json"}
        if signature:
            headers["Stripe-Signature"] = signature
        return self.url_open(WEBHOOK, data=body, headers=headers)

    def test_signed_webhook_completes_the_payment_once_even_when_replayed(self):
        response = self.post(self.event())
        self.assertEqual(response.status_code, 200)
        self.assertEqual(self.tx.state, "done")
        self.tx._post_process()
        self.assertEqual(self.therapy.state, "paid")
        payments = self.tx.payment_id
        self.assertEqual(len(payments), 1)
        self.assertEqual(self.post(self.event()).status_code, 200)  # replayed
        self.tx._post_process()
        self.assertEqual(self.tx.payment_id, payments)
        self.assertEqual(
            self.env["account.payment"].search_count([("payment_transaction_id", "=", self.tx.id)]),
            1,
        )

    def test_out_of_order_webhook_changes_nothing(self):
        self.post(self.event())
        self.assertEqual(self.tx.state, "done")
        self.post(self.event(status="processing", kind="payment_intent.processing"))
        self.assertEqual(self.tx.state, "done")
        self.post(
            self.event(status="requires_payment_method", kind="payment_intent.payment_failed")
        )
        self.assertEqual(self.tx.state, "done")

    @mute_logger(
        "odoo.addons.bookconnect_therapy.controllers.stripe",
        "odoo.addons.payment_stripe.controllers.main",
    )
    def test_badly_signed_or_unsigned_webhooks_are_refused(self):
        self.assertEqual(self.post(self.event(), secret="whsec_wrong").status_code, 403)
        self.assertEqual(self.post(self.event(), signature="").status_code, 403)
        self.assertEqual(self.post(self.event(), signature="garbage").status_code, 403)
        self.assertEqual(
            self.post(self.event(), timestamp=int(time.time()) - 3600).status_code, 403
        )
        self.assertEqual(self.tx.state, "pending")

    @mute_logger("odoo.addons.bookconnect_therapy.controllers.stripe")
    def test_no_webhook_secret_refuses_every_event(self):
        self.stripe.stripe_webhook_secret = False
        self.assertEqual(self.post(self.event(), secret="").status_code, 403)
        self.assertEqual(self.post(self.event(), signature="").status_code, 403)
        self.assertEqual(self.tx.state, "pending")
