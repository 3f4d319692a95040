import logging
import pprint
import re

from odoo import _, api, fields, models
from odoo.tools import float_compare

from odoo.addons.payment import utils as payment_utils
from odoo.addons.payment_stripe.controllers.main import StripeController

from .bookconnect_topup_pack import TOPUP_PREFIX

_logger = logging.getLogger(__name__)

PURPOSES = [
    ("charge", "Session charge"),
    ("hold", "Card hold"),
    ("topup", "Balance top-up"),
    ("release", "Released from a card hold"),
]


class PaymentTransaction(models.Model):
    _name = "payment.transaction"
    _inherit = ["payment.transaction", "bookconnect.payment.engine"]

    bookconnect_session_id = fields.Many2one(
        "bookconnect.therapy.session",
        "Therapy session",
        index="btree_not_null",
        readonly=True,
        copy=False,
    )
    bookconnect_purpose = fields.Selection(PURPOSES, "Purpose", readonly=True, copy=False)
    bookconnect_held_amount = fields.Monetary(
        "Amount held", readonly=True, copy=False, help="What the card hold reserved."
    )
    bookconnect_handler = fields.Char(
        "Handled by",
        readonly=True,
        copy=False,
        help="The model whose _on_payment_outcome is told what became of the transaction.",
    )
    bookconnect_receipt_sent = fields.Boolean(readonly=True, copy=False)

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            # Top-ups paid from the portal come through Odoo's generic payment page, which
            # only lets us choose the reference: it names the client and the pack.
            if str(vals.get("reference", "")).startswith(TOPUP_PREFIX):
                vals.setdefault("bookconnect_purpose", "topup")
                vals.setdefault("bookconnect_handler", "bookconnect.prepaid.balance")
        txs = super().create(vals_list)
        txs._bookconnect_save_cards_for_card_policies()
        return txs

    def _bookconnect_save_cards_for_card_policies(self):
        """A client paying a session invoice online whose policy charges the saved card (or
        requires one) saves the card they pay with, for the next sessions."""
        to_save = self.filtered(
            lambda tx: (
                tx.operation in ("online_direct", "online_redirect")
                and not tx.tokenize
                and tx.provider_id.allow_tokenization
                and tx.payment_method_id.support_tokenization
                and any(
                    policy.collection == "card" or policy.require_card
                    for policy in tx.invoice_ids.sudo().bookconnect_session_id.policy_id
                )
            )
        )
        if to_save:
            to_save.tokenize = True

    @api.model
    def _bookconnect_prepare_offline_values(
        self, handler, token, amount, currency, *, partner, purpose, **values
    ):
        """Values of a transaction charging a saved card without the client (a charge, a
        hold, a top-up), whose outcome the service ``handler`` (a model name) handles."""
        return {
            "provider_id": token.provider_id.id,
            "payment_method_id": token.payment_method_id.id,
            "token_id": token.id,
            "amount": amount,
            "currency_id": currency.id,
            "partner_id": partner.id,
            "operation": "offline",
            "bookconnect_purpose": purpose,
            "bookconnect_handler": handler,
            **values,
        }

    def _bookconnect_refunded_amount(self, invoices=None):
        """What was refunded (or is being refunded) of this transaction, as a positive
        amount; only the refunds paying out ``invoices`` (credit notes) when given."""
        self.ensure_one()
        refunds = self.child_transaction_ids.filtered(
            lambda t: (
                t.operation == "refund"
                and t.state != "error"
                and (invoices is None or invoices & t.invoice_ids)
            )
        )
        return -sum(refunds.mapped("amount"))

    def _bookconnect_book(self):
        """Payment, reconciliation and receipt of completed transactions: at once when the
        payment was sent at once, else by Odoo's post-processing job, as for a webhook."""
        if not self:
            return
        if self.env.context.get("bookconnect_defer_post_process"):
            self.env.ref("payment.cron_post_process_payment_tx")._trigger()
        else:
            self._post_process()

    def _bookconnect_log_on_sessions(self, body):
        """Say ``body`` on the sessions these transactions are for."""
        for session in self.bookconnect_session_id | self.invoice_ids.bookconnect_session_id:
            session.message_post(body=body)

    @api.constrains("token_id")
    def _check_token_is_active(self):
        # Odoo's check reads the token of the whole recordset at once, which fails when the
        # charges of several clients are created together: check them one by one.
        results = [super(PaymentTransaction, tx)._check_token_is_active() for tx in self]
        return results[-1] if results else None

    def _bookconnect_topup_pack(self):
        """The pack a top-up paid for, when its reference and amount match one."""
        self.ensure_one()
        return self.env["bookconnect.topup.pack"]._from_topup(self)

    # ------------------------------------------------------------------
    # Stripe: holds are captured manually, and for less than they hold
    # ------------------------------------------------------------------

    def _stripe_prepare_payment_intent_payload(self):
        payload = super()._stripe_prepare_payment_intent_payload()
        if self.bookconnect_purpose == "hold":
            payload["capture_method"] = "manual"
        return payload

    def _bookconnect_keyed(self, scope):
        """This transaction, whose Stripe requests carry an idempotency key for ``scope`` (Odoo
        sends captures, voids and refunds without one): a request repeated after a lost answer
        gets the first one's result instead of moving money twice."""
        if not self.bookconnect_purpose or self.provider_code != "stripe":
            return self
        key = payment_utils.generate_idempotency_key(self, scope=f"bookconnect-{scope}")
        return self.with_context(bookconnect_idempotency_key=key)

    def _send_refund_request(self, amount_to_refund=None):
        if not self.bookconnect_purpose:
            return super()._send_refund_request(amount_to_refund=amount_to_refund)
        # The same refund asked again (same reason key, amount, and refunds before it) is the
        # same request; a new refund of the same transaction is a new one.
        earlier = self.child_transaction_ids.filtered(
            lambda t: t.operation == "refund" and t.state != "error"
        )
        scope = "refund-{}-{}-{}".format(
            self.env.context.get("bookconnect_refund_key", ""), amount_to_refund, len(earlier)
        )
        return super(PaymentTransaction, self._bookconnect_keyed(scope))._send_refund_request(
            amount_to_refund=amount_to_refund
        )

    def _send_void_request(self, amount_to_void=None):
        return super(PaymentTransaction, self._bookconnect_keyed("void"))._send_void_request(
            amount_to_void=amount_to_void
        )

    def _send_capture_request(self, amount_to_capture=None):
        """Capture a card hold for less than it held (Stripe releases the rest); Odoo's own
        Stripe flow captures only in full."""
        keyed = self._bookconnect_keyed(f"capture-{amount_to_capture}")
        partial = (
            self.provider_code == "stripe"
            and self.bookconnect_purpose == "hold"
            and amount_to_capture
            and float_compare(amount_to_capture, self.amount, self.currency_id.decimal_places) < 0
        )
        if not partial:
            return super(PaymentTransaction, keyed)._send_capture_request(
                amount_to_capture=amount_to_capture
            )
        self.ensure_one()
        self._ensure_provider_is_not_disabled()
        payment_intent = self.provider_id._stripe_make_request(
            f"payment_intents/{self.provider_reference}/capture",
            payload={
                "amount_to_capture": payment_utils.to_minor_currency_units(
                    amount_to_capture, self.currency_id
                )
            },
            idempotency_key=keyed.env.context.get("bookconnect_idempotency_key"),
        )
        _logger.info(
            "partial capture response for transaction %s:\n%s",
            self.reference,
            pprint.pformat(payment_intent),
        )
        # The transaction (and so the payment Odoo books from it) is what was taken; the hold
        # stays on record.
        self.write({"bookconnect_held_amount": self.amount, "amount": amount_to_capture})
        notification_data = {"reference": self.reference}
        StripeController._include_payment_intent_in_notification_data(
            payment_intent, notification_data
        )
        self._handle_notification_data("stripe", notification_data)
        return self.env["payment.transaction"]

    def _bookconnect_is_hold_release(self, refund):
        """Whether ``refund``, a Stripe refund reported on this transaction, is only the part of
        a card hold that was let go, not money given back.

        At the Stripe API version Odoo uses, what a partial capture leaves and a cancelled
        authorization are recorded as refunds of the charge and announced by ``charge.refunded``
        webhooks. Nothing was taken for them, so nothing may be booked.
        """
        self.ensure_one()
        if self.bookconnect_purpose != "hold":
            return False
        if self.state != "done":
            # Nothing captured (voided, or the capture is not recorded yet): only a release.
            return True
        released = self.bookconnect_held_amount - self.amount if self.bookconnect_held_amount else 0
        if float_compare(released, 0, precision_rounding=self.currency_id.rounding) <= 0:
            return False
        if self.child_transaction_ids.filtered(lambda t: t.bookconnect_purpose == "release"):
            return False  # the release is recorded: this one is a real refund
        return refund.get("amount") == payment_utils.to_minor_currency_units(
            released, self.currency_id
        )

    def _bookconnect_capture_outcome(self):
        """Ask Stripe whether this card hold was captured, after a capture whose answer was
        lost, and record the capture when it was.

        :return: whether the hold is captured (the transaction is then done).
        :raise: what reaching Stripe raises (``requests`` errors, ``ValidationError``).
        """
        self.ensure_one()
        if self.provider_code != "stripe" or not self.provider_reference:
            return False
        payment_intent = self.provider_id._stripe_make_request(
            f"payment_intents/{self.provider_reference}", method="GET"
        )
        if payment_intent.get("status") != "succeeded":
            return False
        notification_data = {"reference": self.reference}
        StripeController._include_payment_intent_in_notification_data(
            payment_intent, notification_data
        )
        self._handle_notification_data("stripe", notification_data)
        return self.state == "done"

    def _bookconnect_record_captured_amount(self, payment_intent):
        """What Stripe captured from a hold, whoever says it (the capture's answer, a look-up
        after a lost answer, a webhook): the transaction, and so the payment Odoo books from
        it, is what was taken; what was held stays on record."""
        if not isinstance(payment_intent, dict) or payment_intent.get("status") != "succeeded":
            return
        received = payment_intent.get("amount_received")
        if received is None:
            return
        captured = payment_utils.to_major_currency_units(received, self.currency_id)
        if self.currency_id.compare_amounts(captured, self.amount) < 0:
            self.write({"bookconnect_held_amount": self.amount, "amount": captured})

    def _process_notification_data(self, notification_data):
        if self.bookconnect_purpose == "hold" and self.provider_code == "stripe":
            self._bookconnect_record_captured_amount(notification_data.get("payment_intent"))
        if self.bookconnect_purpose != "release":
            return super()._process_notification_data(notification_data)
        # Recorded for the accountant, never booked: the client paid nothing for it.
        self.provider_reference = (notification_data.get("refund") or {}).get("id")
        self._set_canceled(
            state_message=_("Released from the card hold by Stripe: no money was refunded.")
        )
        return None

    def _create_child_transaction(self, amount, is_refund=False, **custom_create_values):
        refund_invoice_ids = self.env.context.get("bookconnect_refund_invoice_ids")
        if is_refund and refund_invoice_ids:
            # The refund pays out a credit note: Odoo reconciles its payment with it.
            custom_create_values.setdefault("invoice_ids", [fields.Command.set(refund_invoice_ids)])
            custom_create_values.setdefault(
                "bookconnect_session_id", self.bookconnect_session_id.id
            )
        return super()._create_child_transaction(
            amount, is_refund=is_refund, **custom_create_values
        )

    # ------------------------------------------------------------------
    # Post-processing: receipts and session states
    # ------------------------------------------------------------------

    def _post_process(self):
        result = super()._post_process()
        paid = self.filtered(
            lambda tx: (
                tx.state == "done"
                and tx.bookconnect_purpose in ("charge", "hold")
                and tx.operation != "refund"
                and tx.payment_id
                and not tx.bookconnect_receipt_sent
            )
        )
        if paid:
            paid._bookconnect_send_receipts()
        topups = self.filtered(
            lambda tx: tx.bookconnect_purpose == "topup" and tx.operation != "refund"
        )
        if topups:
            topups._bookconnect_after_topup()
        return result

    def _bookconnect_after_topup(self):
        """A top-up came in: add the pack's bonus as a credit note and let the client's unpaid
        prepaid sessions draw on it."""
        done = self.filtered(lambda tx: tx.state == "done" and not tx.bookconnect_receipt_sent)
        balance = self.env["bookconnect.prepaid.balance"]
        for tx in done:
            pack = tx._bookconnect_topup_pack()
            if pack and pack.bonus_amount > 0:
                balance._topup_bonus(tx, pack)
            tx.partner_id.commercial_partner_id.bookconnect_autotopup_failed = False
        done.write({"bookconnect_receipt_sent": True})
        partners = done.partner_id.commercial_partner_id
        open_invoices = self.env["account.move"].search(
            [
                ("commercial_partner_id", "in", partners.ids),
                ("state", "=", "posted"),
                ("payment_state", "in", ("not_paid", "partial")),
                ("bookconnect_session_id.policy_id.prepayment", "=", "balance"),
            ]
        )
        if open_invoices:
            balance._draw(open_invoices)
        if done:
            # After the bonus and the draws: the receipt says what the balance is now.
            template = self.env.ref("bookconnect_therapy.mail_template_topup_receipt")
            template.sudo().send_mail_batch(
                done.ids, email_layout_xmlid="mail.mail_notification_light"
            )

    def _bookconnect_send_receipts(self):
        template = self.env.ref("bookconnect_therapy.mail_template_payment_receipt")
        template.send_mail_batch(self.ids, email_layout_xmlid="mail.mail_notification_light")
        self.write({"bookconnect_receipt_sent": True})
        # The receipt is the invoices' email: Odoo's own sending is not needed on top of it.
        self.invoice_ids.filtered(lambda m: not m.is_move_sent).write({"is_move_sent": True})

    @api.model
    def _bookconnect_failure_reason(self, tx):
        """A plain reason for a transaction that did not go through."""
        if tx.state == "draft" and tx.provider_reference:
            return _("the bank asks the client to confirm this payment (3-D Secure)")
        message = tx.state_message or ""
        # Odoo's Stripe flow wraps the bank's words ("Your card was declined.") in a technical
        # sentence; the client and the therapist only need the bank's words.
        quoted = re.search(r"'([^']+)'\s*$", message)
        return (quoted.group(1) if quoted else message) or _("the payment did not go through")

    def _set_done(self, *args, **kwargs):
        result = super()._set_done(*args, **kwargs)
        if not self.env.context.get("bookconnect_defer_post_process") and any(
            tx.bookconnect_purpose for tx in self
        ):
            # A payment completed later by a webhook gets paid, reconciled and receipted soon,
            # not at the post-processing cron's next round. (Jobs trigger it once, at the end.)
            self.env.ref("payment.cron_post_process_payment_tx")._trigger()
        return result

    def _log_sent_message(self):
        # A charge sent by a job would add "transaction initiated" and "transaction confirmed"
        # to every invoice's chatter, right before Odoo's post-processing posts "the payment
        # has been posted" (or the session gets a failure note): the accountant reads the
        # outcome, not each step of each attempt.
        if self.env.context.get("bookconnect_defer_post_process"):
            others = self.filtered(lambda tx: not tx.bookconnect_purpose)
            return super(PaymentTransaction, others)._log_sent_message()
        return super()._log_sent_message()

    def _log_received_message(self):
        if self.env.context.get("bookconnect_defer_post_process"):
            others = self.filtered(lambda tx: not tx.bookconnect_purpose)
            return super(PaymentTransaction, others)._log_received_message()
        return super()._log_received_message()
