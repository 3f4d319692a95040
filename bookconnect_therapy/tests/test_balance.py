from unittest.mock import patch

from freezegun import freeze_time

from odoo.exceptions import UserError
from odoo.tests import tagged

from odoo.addons.mail.tests.common import MailCase

from .common import StripeSessionCase


@tagged("post_install", "-at_install", "bookconnect")
class TestPrepaidBalance(StripeSessionCase, MailCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.prepaid = cls._make_policy(
            mode="minute",
            rate=0.65,
            collection="portal",
            prepayment="balance",
            minimum_balance=5.0,
            low_balance_warning_minutes=5,
            overrun="invoice",
            channel_rates=True,
            rate_voice=0.50,
            rate_chat=0.40,
        )
        cls.pack20 = cls.env["bookconnect.topup.pack"].create({"name": "20", "amount": 20.0})
        cls.pack10 = cls.env["bookconnect.topup.pack"].create(
            {"name": "10 + 1", "amount": 10.0, "bonus_amount": 1.0}
        )

    def topup(self, pack, partner=None):
        """The client pays a pack (the portal payment, here off-session for brevity)."""
        partner = partner or self.client
        tx = self.env["payment.transaction"].create(
            {
                "provider_id": self.stripe.id,
                "payment_method_id": self.card.id,
                "token_id": self.token.id,
                "reference": self.env["payment.transaction"]._compute_reference(
                    "stripe", prefix=f"TOPUP-{partner.id}-{pack.id}"
                ),
                "amount": pack.amount,
                "currency_id": pack.currency_id.id,
                "partner_id": partner.id,
                "operation": "offline",
            }
        )
        tx._bookconnect_send()
        return tx

    def ledger_balance(self, partner=None):
        """The balance straight from the ledger, independently of the product's code."""
        partner = partner or self.client
        self.env.flush_all()
        self.env.cr.execute(
            """
            SELECT COALESCE(-SUM(l.amount_residual), 0)
              FROM account_move_line l
              JOIN account_account a ON a.id = l.account_id
             WHERE l.partner_id = %s AND a.account_type = 'asset_receivable'
               AND l.parent_state = 'posted' AND NOT l.reconciled AND l.balance < 0
            """,
            (partner.commercial_partner_id.id,),
        )
        return float(self.env.cr.fetchone()[0])

    def balance(self, partner=None):
        partner = partner or self.client
        partner.invalidate_recordset(["bookconnect_balance"])
        return partner.bookconnect_balance

    def held(self, minutes_together, **values):
        values.setdefault("policy_id", self.prepaid.id)
        return super().held(minutes_together, **values)

    def test_a_topup_becomes_an_outstanding_credit(self):
        tx = self.topup(self.pack20)
        self.assertEqual((tx.state, tx.bookconnect_purpose), ("done", "topup"))
        self.assertTrue(tx.payment_id)
        self.assertFalse(tx.invoice_ids)
        self.assertEqual(self.balance(), 20.0)
        self.assertEqual(self.ledger_balance(), 20.0)

    def test_a_pack_bonus_is_credit_too(self):
        self.topup(self.pack10)
        self.assertEqual(self.balance(), 11.0)
        bonus = self.env["account.move"].search(
            [("partner_id", "=", self.client.id), ("move_type", "=", "out_refund")]
        )
        self.assertAlmostEqual(bonus.amount_total, 1.0)

    def test_sessions_draw_on_the_balance_by_the_minute(self):
        self.topup(self.pack20)
        session = self.held(12)
        session.action_end_session()
        invoice = session.invoice_id
        self.assertAlmostEqual(invoice.amount_total, 7.80)
        self.assertIn(invoice.payment_state, ("paid", "in_payment"))
        self.assertEqual(session.state, "paid")
        self.assertAlmostEqual(self.balance(), 12.20)
        self.assertAlmostEqual(self.ledger_balance(), 12.20)
        history = self.env["bookconnect.prepaid.balance"]._history(self.client)
        self.assertEqual([round(h["balance"], 2) for h in history], [20.0, 12.2])
        self.assertEqual(history[-1]["label"], invoice.invoice_line_ids.name)

    def test_a_session_larger_than_the_balance_with_an_open_invoice(self):
        self.topup(self.pack10)  # 11.00 with the bonus
        session = self.held(20)  # 13.00
        session.action_end_session()
        invoice = session.invoice_id
        self.assertEqual(invoice.payment_state, "partial")
        self.assertAlmostEqual(invoice.amount_residual, 2.0)
        self.assertEqual(self.balance(), 0.0)
        self.assertFalse(self.calls("payment_intents")[1:], "no card charge for the overrun")

    def test_a_session_larger_than_the_balance_charged_to_the_card(self):
        self.prepaid.write({"overrun": "card", "collection": "card"})
        self.topup(self.pack10)
        session = self.held(20)
        session.action_end_session()
        charge = session.transaction_ids.filtered(lambda t: t.bookconnect_purpose == "charge")
        self.assertAlmostEqual(charge.amount, 2.0)
        self.assertIn(session.invoice_id.payment_state, ("paid", "in_payment"))
        self.assertEqual(self.balance(), 0.0)

    def test_at_zero_the_call_ends_and_bills_what_was_used(self):
        self.prepaid.overrun = "end"
        self.topup(self.pack10)  # 11.00 buys 16 whole minutes at 0.65
        session = self.book(policy_id=self.prepaid.id, start=self.at(0))
        self.external(session, "therapist", "joined", 0)
        self.external(session, "client", "joined", 0)
        watch = self.env["bookconnect.prepaid.watch"]._cron_watch_prepaid
        with freeze_time(self.at(10)):
            watch()
        self.assertFalse(session.balance_warned)
        with freeze_time(self.at(11)):
            self.assertEqual(self.env["bookconnect.prepaid.watch"]._remaining_minutes(session), 5.0)
            watch()
            watch()
        self.assertTrue(session.balance_warned)
        warnings = session.message_ids.filtered(lambda m: "prepaid time are left" in (m.body or ""))
        self.assertEqual(len(warnings), 1, "warned once")
        with freeze_time(self.at(15, 59)):
            watch()
        self.assertEqual(session.state, "in_progress")
        with freeze_time(self.at(16)):
            watch()
        self.assertEqual(session.state, "paid")
        self.assertEqual(session.billable_minutes, 16)
        self.assertAlmostEqual(session.invoice_id.amount_total, 10.40)
        self.assertAlmostEqual(self.balance(), 0.60, msg="nobody owes anybody")
        self.assertTrue(
            session.message_ids.filtered(lambda m: "run out: the call ends" in (m.body or ""))
        )

    def test_a_prepaid_session_needs_the_minimum_balance_to_start(self):
        session = self.book(policy_id=self.prepaid.id)
        with self.assertRaisesRegex(UserError, "top up first"):
            session.call_id._check_can_start()
        self.topup(self.pack10)
        session.call_id._check_can_start()

    def test_auto_topup_below_the_threshold_once(self):
        self.client.write(
            {
                "bookconnect_autotopup_pack_id": self.pack20.id,
                "bookconnect_autotopup_threshold": 5.0,
            }
        )
        self.topup(self.pack10)  # 11.00
        first = self.held(5)  # 3.25 -> 7.75 left, above the threshold
        first.action_end_session()
        self.assertFalse(
            self.env["payment.transaction"].search(
                [
                    ("partner_id", "=", self.client.id),
                    ("reference", "=like", f"TOPUP-{self.client.id}-{self.pack20.id}%"),
                ]
            )
        )
        second = self.held(5)  # -> 4.50 left: tops up 20
        second.action_end_session()
        auto = (
            self.env["payment.transaction"]
            .search([("partner_id", "=", self.client.id), ("bookconnect_purpose", "=", "topup")])
            .filtered(lambda t: t.amount == 20.0)
        )
        self.assertEqual(len(auto), 1)
        self.assertEqual(auto.state, "done")
        self.assertAlmostEqual(self.balance(), 24.50)

    def test_a_refused_auto_topup_is_not_retried_in_a_loop(self):
        self.client.write(
            {
                "bookconnect_autotopup_pack_id": self.pack20.id,
                "bookconnect_autotopup_threshold": 5.0,
            }
        )
        self.topup(self.pack10)
        self.stripe_answers["payment_intents"] = [
            {
                "error": {
                    "code": "card_declined",
                    "message": "Your card was declined.",
                    "type": "card_error",
                }
            }
        ] * 5
        with self.mock_mail_gateway():
            self.held(15).action_end_session()  # 9.75 -> 1.25 left
            self.held(1).action_end_session()
            self.held(1).action_end_session()
        attempts = self.env["payment.transaction"].search(
            [
                ("partner_id", "=", self.client.id),
                ("bookconnect_purpose", "=", "topup"),
                ("amount", "=", 20.0),
            ]
        )
        self.assertEqual(len(attempts), 1, "tried once")
        self.assertEqual(attempts.state, "error")
        self.assertTrue(self.client.bookconnect_autotopup_failed)
        told = self.mails("automatic top-up")
        self.assertEqual(len(told), 1)
        self.assertEqual(told.recipient_ids, self.client)
        # the client tops up by hand: automatic top-ups work again
        self.stripe_answers.pop("payment_intents")
        self.topup(self.pack20)
        self.assertFalse(self.client.bookconnect_autotopup_failed)

    def test_unused_balance_is_refunded_through_the_provider(self):
        self.topup(self.pack20)
        self.held(10).action_end_session()  # 6.50 used
        with self.assertRaisesRegex(UserError, "At most"):
            self.env["bookconnect.prepaid.balance"]._refund(self.client, self.company, 50.0)
        with self.mock_mail_gateway():
            refunds = self.env["bookconnect.prepaid.balance"]._refund(self.client, self.company)
        [told] = self.mails("prepaid balance was refunded")
        self.assertEqual(told.recipient_ids, self.client)
        self.assertIn("$\xa013.50", told.body_html)
        self.assertRegex(told.body_html, r"is now\s*<strong>\$\xa00\.00</strong>")
        self.assertEqual(self.calls("refunds")[0]["payload"]["amount"], 1350)
        self.assertEqual(refunds.state, "done")
        self.assertEqual(refunds.payment_id.payment_type, "outbound")
        self.assertEqual(self.balance(), 0.0)
        self.assertEqual(self.ledger_balance(), 0.0)
        with self.assertRaisesRegex(UserError, "no prepaid balance"):
            self.env["bookconnect.prepaid.balance"]._refund(self.client, self.company)

    def test_per_channel_rates_and_labels(self):
        self.topup(self.pack20)
        voice = self.held(10, channel="voice")
        chat = self.held(10, channel="chat")
        video = self.held(10, channel="video")
        (voice | chat | video).action_end_session()
        self.assertEqual([s.invoice_id.amount_total for s in (voice, chat, video)], [5.0, 4.0, 6.5])
        self.assertTrue(chat.invoice_id.invoice_line_ids.name.startswith("Chat session — 10 min"))
        self.assertTrue(voice.invoice_id.invoice_line_ids.name.startswith("Voice session — 10 min"))
        self.assertAlmostEqual(self.balance(), 20.0 - 15.5)

    def test_chat_is_metered_while_open_with_both_present(self):
        self.topup(self.pack20)
        session = self.book(policy_id=self.prepaid.id, channel="chat", start=self.at(0))
        with freeze_time(self.at(0)):
            session.with_user(self.therapist).action_open_chat()
        channel = session.calendar_event_id.videocall_channel_id
        self.assertEqual(session.state, "in_progress")
        with freeze_time(self.at(2)):
            channel.with_user(self.client_user).message_post(
                body="Hello", message_type="comment", subtype_xmlid="mail.mt_comment"
            )
        with freeze_time(self.at(5)):
            channel.with_user(self.client_user).message_post(
                body="Still here", message_type="comment", subtype_xmlid="mail.mt_comment"
            )
        with freeze_time(self.at(14)):
            session.with_user(self.therapist).action_close_chat()
        self.assertEqual(session.billable_minutes, 12)
        self.assertEqual(len(session.call_id.segment_ids.filtered(lambda s: s.role == "client")), 1)
        self.assertTrue(
            session.invoice_id.invoice_line_ids.name.startswith("Chat session — 12 min")
        )
        self.assertAlmostEqual(session.invoice_id.amount_total, 4.80)

    def test_the_balance_always_equals_the_ledger(self):
        steps = [
            lambda: self.topup(self.pack20),
            lambda: self.held(7).action_end_session(),
            lambda: self.topup(self.pack10),
            lambda: self.held(33).action_end_session(),
            lambda: self.held(3, channel="chat").action_end_session(),
            lambda: self.env["bookconnect.prepaid.balance"]._refund(self.client, self.company, 1.0),
            lambda: self.topup(self.pack20),
        ]
        for step in steps:
            step()
            self.assertAlmostEqual(self.balance(), self.ledger_balance())
        history = self.env["bookconnect.prepaid.balance"]._history(self.client)
        self.assertAlmostEqual(
            history[-1]["balance"],
            self.ledger_balance()
            - sum(
                inv.amount_residual
                for inv in self.env["account.move"].search(
                    [
                        ("partner_id", "=", self.client.id),
                        ("state", "=", "posted"),
                        ("move_type", "=", "out_invoice"),
                    ]
                )
            ),
        )


@tagged("post_install", "-at_install", "bookconnect")
class TestPrepaidEndpointGuard(StripeSessionCase):
    def test_external_join_is_refused_below_the_minimum_balance(self):
        prepaid = self.policy(mode="minute", rate=1.0, prepayment="balance", minimum_balance=5.0)
        session = self.book(policy_id=prepaid.id)
        with self.assertRaises(UserError):
            session.call_id._check_can_start()
        with patch.object(type(session.call_id), "_check_can_start", lambda self: None):
            self.assertTrue(self.external(session, "client", "joined", 0))
