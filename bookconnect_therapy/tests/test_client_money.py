"""What the client is told about money: the session's money lines and the emails that carry
them (fees, holds, refunds, top-ups), the salesperson of session invoices, and one email per
invoice and outcome."""

from freezegun import freeze_time

from odoo.tests import tagged

from odoo.addons.mail.tests.common import MailCase

from .common import StripeSessionCase


class ClientMoneyCase(StripeSessionCase, MailCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.client.tz = "Europe/London"
        cls.therapist.tz = "Europe/Paris"
        cls.policy_fees = cls._make_policy(
            mode="session",
            rate=90.0,
            collection="card",
            free_cancel_hours=24,
            late_fee_kind="fixed",
            late_fee_fixed=20.0,
            no_show_fee_kind="percent",
            no_show_fee_percent=100,
            review_hours=24,
        )
        cls.policy_hold = cls._make_policy(
            mode="minute",
            rate=1.0,
            collection="card",
            prepayment="hold",
            hold_hours_before=24,
            free_cancel_hours=12,
            late_fee_kind="none",
        )

    def to_client(self):
        """Emails created for the client under ``mock_mail_gateway``."""
        return self._new_mails.filtered(lambda m: self.client in m.recipient_ids)

    def lines(self, session, kind=None):
        return [
            line for line in session._client_money_lines() if kind is None or line["kind"] == kind
        ]

    def place_hold(self, session, when):
        with freeze_time(when), self.mock_mail_gateway():
            self.env["bookconnect.card.hold"]._cron_place_holds()
        return session._active_hold()


@tagged("post_install", "-at_install", "bookconnect")
class TestFeesTheClientIsTold(ClientMoneyCase):
    def test_a_late_cancellation_fee_is_a_money_line_and_one_email(self):
        session = self.book(policy_id=self.policy_fees.id, start=self.at(0))
        with freeze_time(self.at(-60)), self.mock_mail_gateway():
            session.with_user(self.client_user).action_client_cancel()
        # One email for the cancellation: the fee's, which says the session is cancelled.
        [mail] = self.to_client()
        self.assertIn("fee applies", mail.subject)
        due = "Sat 28 Nov 2026, 09:00 (Europe/London)"
        for text in ("is cancelled", "$\xa020.00", due, "unless the practice waives it"):
            self.assertIn(text, mail.body_html)
        [fee] = self.lines(session)
        self.assertEqual(
            (fee["kind"], fee["amount"], fee["state"], fee["label"]),
            ("fee", 20.0, "in_review", "Late-cancellation fee"),
        )
        self.assertIn(f"In review until {due}: the practice may waive it", fee["state_label"])
        self.assertIn("cancelled on Fri 27 Nov 2026, 09:00 (Europe/London)", fee["why"])
        # The chatter says when in words, in the therapist's time zone: not raw UTC.
        [note] = session.message_ids.filtered(lambda m: "fee applies" in m.body)
        self.assertIn("Sat 28 Nov 2026, 10:00 (Europe/Paris)", note.body)
        self.assertNotIn("2026-11-28 09:00:00", note.body)

        with freeze_time(self.at(60)), self.mock_mail_gateway():
            session.with_user(self.therapist)._waive_fee("Family emergency")
        [waived] = self.to_client()
        self.assertIn("No fee for your session", waived.subject)
        self.assertIn("is waived: you owe nothing", waived.body_html)
        self.assertNotIn("Family emergency", waived.body_html, "the practice's reason is theirs")
        [fee] = self.lines(session)
        self.assertEqual((fee["state"], fee["state_label"]), ("waived", "Waived"))

    def test_a_no_show_fee_is_told_with_its_reason(self):
        session = self.book(policy_id=self.policy_fees.id, start=self.at(0))
        with freeze_time(self.at(20)), self.mock_mail_gateway():
            self.env["bookconnect.fee.manager"]._cron_detect_no_shows()
        [mail] = self.to_client()
        self.assertIn("You did not join your session", mail.body_html)
        self.assertIn("$\xa090.00", mail.subject)
        [fee] = self.lines(session)
        self.assertEqual((fee["label"], fee["amount"]), ("No-show fee", 90.0))
        self.assertIn("had not joined 15 minutes after the start", fee["why"])

    def test_a_first_offence_waived_by_the_policy_is_one_email(self):
        self.policy_fees.waive_first_offence = True
        session = self.book(policy_id=self.policy_fees.id, start=self.at(0))
        with freeze_time(self.at(-60)), self.mock_mail_gateway():
            session.with_user(self.client_user).action_client_cancel()
        [mail] = self.to_client()
        self.assertIn("No fee for your session", mail.subject)
        self.assertEqual(self.lines(session)[0]["state"], "waived")

    def test_a_charged_fee_is_its_invoice_line(self):
        session = self.book(policy_id=self.policy_fees.id, start=self.at(0))
        with freeze_time(self.at(-60)):
            session.with_user(self.client_user).action_client_cancel()
        with freeze_time(self.at(25 * 60)):
            self.env["bookconnect.fee.manager"]._cron_charge_fees()
        self.assertEqual(session.fee_state, "charged")
        [line] = self.lines(session)
        self.assertEqual(
            (line["kind"], line["label"], line["amount"], line["state"]),
            ("invoice", "Late-cancellation fee", 20.0, "paid"),
        )
        self.assertEqual(line["state_label"], "Paid by card")
        fee_invoice = session.invoice_ids
        self.assertEqual(line["document"], fee_invoice.name)
        self.assertIn(f"/my/invoices/{fee_invoice.id}?access_token=", line["url"])
        self.assertEqual(fee_invoice.invoice_user_id, self.therapist)


@tagged("post_install", "-at_install", "bookconnect")
class TestHoldsRefundsAndTopupsTheClientIsTold(ClientMoneyCase):
    def test_a_hold_is_emailed_then_released_when_cancelled_in_time(self):
        session = self.book(policy_id=self.policy_hold.id, start=self.at(0), minutes=50)
        hold = self.place_hold(session, self.at(-23 * 60))
        self.assertEqual(hold.state, "authorized")
        [mail] = self.to_client()
        self.assertIn("held on your card", mail.subject)
        self.assertIn("$\xa050.00", mail.body_html)
        self.assertIn("only what it costs is taken", mail.body_html)
        [line] = self.lines(session)
        self.assertEqual((line["kind"], line["amount"], line["state"]), ("hold", 50.0, "held"))

        with freeze_time(self.at(-22 * 60)), self.mock_mail_gateway():
            session.with_user(self.client_user).action_client_cancel()
        [cancelled] = self.to_client()
        self.assertIn("is cancelled", cancelled.subject)
        self.assertIn("Released: nothing was taken", cancelled.body_html)
        [line] = self.lines(session)
        self.assertEqual(line["state"], "released")

    def test_a_captured_hold_says_what_was_taken_and_released(self):
        session = self.book(policy_id=self.policy_hold.id, start=self.at(0), minutes=50)
        self.place_hold(session, self.at(-60))
        for role, kind, minute in [
            ("therapist", "joined", 0),
            ("client", "joined", 0),
            ("client", "left", 35),
            ("therapist", "left", 35),
        ]:
            self.external(session, role, kind, minute)
        with self.mock_mail_gateway():
            session.action_end_session()
            self.env["account.move"]._cron_account_move_send()
        [receipt] = self.to_client()
        self.assertIn("payment received", receipt.subject)
        self.assertIn("$\xa050.00", receipt.body_html)
        self.assertIn("the rest, $\xa015.00, is released", receipt.body_html)
        hold_line = self.lines(session, "hold")[0]
        self.assertEqual(hold_line["state"], "captured")
        self.assertEqual(hold_line["state_label"], "$\xa035.00 taken, $\xa015.00 released")
        [invoice_line] = self.lines(session, "invoice")
        self.assertEqual(invoice_line["state_label"], "Paid by card")

    def test_a_refund_is_emailed_with_where_the_money_goes(self):
        session = self.held(40)
        session.action_end_session()
        with self.mock_mail_gateway():
            credit_note = session.with_user(self.therapist)._refund(10.0, "Audio trouble")
        [mail] = self.to_client()
        self.assertIn(f"refund of $\xa010.00 ({credit_note.name})", mail.subject)
        self.assertIn("Audio trouble", mail.body_html)
        self.assertIn("Refunded to your card", mail.body_html)
        [refund] = self.lines(session, "credit_note")
        self.assertEqual(
            (refund["amount"], refund["state"], refund["why"]), (-10.0, "refunded", "Audio trouble")
        )
        self.assertEqual(credit_note.invoice_user_id, self.therapist)

    def test_the_practice_cancelling_tells_the_client(self):
        session = self.book(policy_id=self.policy_fees.id, start=self.at(0))
        with freeze_time(self.at(-60)), self.mock_mail_gateway():
            session.with_user(self.therapist).action_cancel()
        [mail] = self.to_client()
        self.assertIn("cancelled by the practice", mail.body_html)
        self.assertIn("Nothing is charged", mail.body_html)
        self.assertFalse(self.lines(session))

    def test_a_topup_is_receipted_with_the_new_balance(self):
        prepaid = self._make_policy(
            mode="minute", rate=0.65, collection="portal", prepayment="balance"
        )
        self.client.bookconnect_policy_id = prepaid
        pack = self.env["bookconnect.topup.pack"].create(
            {"name": "10 + 1", "amount": 10.0, "bonus_amount": 1.0}
        )
        tx = self.env["payment.transaction"].create(
            {
                "provider_id": self.stripe.id,
                "payment_method_id": self.card.id,
                "token_id": self.token.id,
                "reference": f"TOPUP-{self.client.id}-{pack.id}",
                "amount": 10.0,
                "currency_id": pack.currency_id.id,
                "partner_id": self.client.id,
                "operation": "offline",
            }
        )
        with self.mock_mail_gateway():
            tx._bookconnect_send()
        [mail] = self.to_client()
        self.assertIn("top-up of $\xa010.00 received", mail.subject)
        self.assertIn("bonus of $\xa01.00", mail.body_html)
        self.assertRegex(mail.body_html, r"balance is now\s*<strong>\$\xa011\.00</strong>")
        bonus = self.env["account.move"].search(
            [("ref", "=", tx.reference), ("move_type", "=", "out_refund")]
        )
        self.assertEqual(len(bonus), 1)
        self.assertFalse(bonus.invoice_user_id, "no robot as the salesperson of the bonus")


@tagged("post_install", "-at_install", "bookconnect")
class TestInvoiceEmailsAndSalesperson(ClientMoneyCase):
    def end_and_send(self, session):
        """End the session as the sweep does (as the superuser), then let Odoo's invoice
        sending run: every email the client gets for it."""
        with self.mock_mail_gateway():
            session._end_sessions(automatic=True)
            self.env["account.move"]._cron_account_move_send()
        return self.to_client()

    def test_the_therapist_is_the_salesperson_of_session_invoices(self):
        self.assertEqual(self.env.user.id, 1, "invoices made by the sweep's user")
        session = self.held(35)
        self.end_and_send(session)
        self.assertEqual(session.invoice_id.invoice_user_id, self.therapist)

    def test_a_card_charge_sends_its_receipt_only(self):
        session = self.held(35)
        [mail] = self.end_and_send(session)
        self.assertIn("payment received", mail.subject)
        self.assertTrue(session.invoice_id.is_move_sent)
        self.assertFalse(session.invoice_id.sending_data)

    def test_a_failed_charge_sends_the_pay_link_only(self):
        self.token.active = False
        session = self.held(35)
        [mail] = self.end_and_send(session)
        invoice = session.invoice_id
        self.assertIn(f"please pay invoice {invoice.name} online", mail.subject)
        self.assertIn(f"/my/invoices/{invoice.id}?access_token=", mail.body_html)
        self.assertEqual(invoice.payment_state, "not_paid")
        self.assertTrue(invoice.is_move_sent)

    def test_an_invoice_to_pay_online_is_sent_by_odoo_with_its_link(self):
        portal = self._make_policy(mode="minute", rate=1.0, collection="portal")
        session = self.held(35, policy_id=portal.id)
        [mail] = self.end_and_send(session)
        invoice = session.invoice_id
        self.assertIn(invoice.name, mail.subject)
        self.assertIn("access_token=", mail.body_html)
        self.assertTrue(invoice.is_move_sent)

    def test_a_small_amount_waiting_for_the_next_charge_is_sent_by_odoo(self):
        self.policy_card.charge_floor = 50.0
        session = self.held(35)
        [mail] = self.end_and_send(session)
        self.assertTrue(session.invoice_id.bookconnect_charge_deferred)
        self.assertIn(session.invoice_id.name, mail.subject)
        [line] = self.lines(session)
        self.assertEqual(line["state_label"], "Added to your next card payment")

    def test_a_partly_paid_invoice_says_what_is_left(self):
        portal = self._make_policy(mode="minute", rate=1.0, collection="portal")
        session = self.held(35, policy_id=portal.id)
        session.action_end_session()
        self.env["account.payment.register"].with_context(
            active_model="account.move", active_ids=session.invoice_id.ids
        ).create({"amount": 10.0})._create_payments()
        [line] = self.lines(session)
        self.assertEqual(line["state_label"], "Partly paid: $\xa025.00 left to pay")


@tagged("post_install", "-at_install", "bookconnect")
class TestPrepaidShortfall(ClientMoneyCase):
    def test_sessions_the_balance_will_not_cover(self):
        prepaid = self._make_policy(
            mode="minute", rate=0.65, collection="portal", prepayment="balance", minimum_balance=5
        )
        payment = self.env["account.payment"].create(
            {
                "payment_type": "inbound",
                "partner_type": "customer",
                "partner_id": self.client.id,
                "amount": 40.0,
            }
        )
        payment.action_post()
        first = self.book(policy_id=prepaid.id, start=self.at(0), minutes=50)
        second = self.book(policy_id=prepaid.id, start=self.at(24 * 60), minutes=50)
        other = self.book(policy_id=self.policy_fees.id, start=self.at(48 * 60))
        self.assertEqual(first.estimated_amount, 32.5)
        gaps = self.env["bookconnect.client.money"]._prepaid_shortfalls(first | second | other)
        self.assertEqual(list(gaps), [second], "40.00 covers the first, 7.50 is left")
        self.assertEqual(
            gaps[second], {"needed": 32.5, "available": 7.5, "missing": 25.0, "balance": 40.0}
        )
        payment.action_draft()
        payment.action_cancel()
        gaps = self.env["bookconnect.client.money"]._prepaid_shortfalls(first | second)
        self.assertEqual(gaps[first]["missing"], 32.5)
        self.assertEqual(gaps[second]["available"], 0.0)

    def test_a_session_booked_earlier_is_not_counted_twice(self):
        """Only scheduled sessions count: one held or cancelled does not take balance."""
        prepaid = self._make_policy(
            mode="minute", rate=0.65, collection="portal", prepayment="balance"
        )
        session = self.book(policy_id=prepaid.id, start=self.at(0), minutes=50)
        session.with_user(self.therapist).action_cancel()
        self.assertFalse(self.env["bookconnect.client.money"]._prepaid_shortfalls(session))
        later = self.book(policy_id=prepaid.id, start=self.at(60), minutes=50)
        self.assertTrue(self.env["bookconnect.client.money"]._prepaid_shortfalls(later))
