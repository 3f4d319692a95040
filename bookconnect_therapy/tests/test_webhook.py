import hashlib
import hmac
import json
import time

from freezegun import freeze_time

from odoo.tests import HttpCase, tagged
from odoo.tools import mute_logger

from .common import StripeSessionCase

WEBHOOK = "/payment/stripe/webhook"


class SignedWebhookMixin:
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


@tagged("post_install", "-at_install", "bookconnect")
class TestStripeWebhooks(SignedWebhookMixin, StripeSessionCase, HttpCase):
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


@tagged("post_install", "-at_install", "bookconnect")
class TestStripeHoldReleaseWebhooks(SignedWebhookMixin, StripeSessionCase, HttpCase):
    """At the API version Odoo uses, Stripe records the part of a card hold that a partial
    capture leaves, and a cancelled hold, as refunds of the charge, and announces them with
    ``charge.refunded``. They are not money given back."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.policy_hold = cls._make_policy(
            mode="minute", rate=1.0, collection="card", prepayment="hold", hold_hours_before=24
        )

    def setUp(self):
        super().setUp()
        self.therapy = self.book(policy_id=self.policy_hold.id, start=self.at(0), minutes=50)
        with freeze_time(self.at(-60)):
            self.env["bookconnect.card.hold"]._cron_place_holds()
        self.hold = self.therapy._active_hold()
        self.assertEqual(self.hold.state, "authorized")

    def refunded(self, *refunds):
        """A charge.refunded event for the hold's charge, listing ``(id, amount)`` refunds."""
        return {
            "id": f"evt_{refunds[-1][0]}",
            "type": "charge.refunded",
            "data": {
                "object": {
                    "id": "ch_hold",
                    "object": "charge",
                    "description": self.hold.reference,
                    "payment_intent": self.hold.provider_reference,
                    "amount": 5000,
                    "amount_refunded": sum(amount for _id, amount in refunds),
                    "refunds": {
                        "object": "list",
                        "has_more": False,
                        "data": [
                            {
                                "id": refund_id,
                                "object": "refund",
                                "amount": amount,
                                "charge": "ch_hold",
                                "currency": "usd",
                                "status": "succeeded",
                            }
                            for refund_id, amount in refunds
                        ],
                    },
                }
            },
        }

    def booked_refunds(self):
        """Refunds of the hold that went through, post-processed as Odoo's cron does, and
        the payments booked for them."""
        children = self.hold.child_transaction_ids
        done = children.filtered(lambda t: t.state == "done")
        done._post_process()
        return done, children.payment_id

    def capture_35_of_50(self):
        for role, kind, minute in [
            ("therapist", "joined", 0),
            ("client", "joined", 0),
            ("client", "left", 35),
            ("therapist", "left", 35),
        ]:
            self.external(self.therapy, role, kind, minute)
        self.therapy.action_end_session()
        self.assertEqual((self.hold.state, self.hold.amount), ("done", 35.0))

    def test_released_part_of_a_partial_capture_is_not_booked_as_a_refund(self):
        self.capture_35_of_50()
        for _delivery in range(2):  # Stripe may deliver an event twice
            self.assertEqual(self.post(self.refunded(("re_release", 1500))).status_code, 200)
        done, payments = self.booked_refunds()
        self.assertFalse(done)
        self.assertFalse(payments)
        release = self.hold.child_transaction_ids
        self.assertEqual(len(release), 1)
        self.assertEqual(
            (release.bookconnect_purpose, release.state, release.provider_reference),
            ("release", "cancel", "re_release"),
        )
        self.assertEqual(self.therapy.state, "paid")
        self.assertEqual(self.hold.payment_id.amount, 35.0)

    def test_later_refund_of_a_captured_hold_is_still_booked(self):
        self.capture_35_of_50()
        self.post(self.refunded(("re_release", 1500)))
        # Refunded from Stripe's dashboard afterwards, for the same amount as was released.
        self.post(self.refunded(("re_release", 1500), ("re_dashboard", 1500)))
        done, payments = self.booked_refunds()
        self.assertEqual(done.provider_reference, "re_dashboard")
        self.assertEqual(done.amount, -15.0)
        self.assertEqual(payments.payment_type, "outbound")

    def test_cancelled_hold_is_not_booked_as_a_refund(self):
        self.env["bookconnect.card.hold"]._void(self.hold)
        self.assertEqual(self.hold.state, "cancel")
        self.assertEqual(self.post(self.refunded(("re_void", 5000))).status_code, 200)
        done, payments = self.booked_refunds()
        self.assertFalse(done)
        self.assertFalse(payments)
        self.assertEqual(self.hold.child_transaction_ids.bookconnect_purpose, "release")
