from datetime import timedelta

from freezegun import freeze_time

from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged

from odoo.addons.mail.tests.common import MailCase

from .common import StripeSessionCase


@tagged("post_install", "-at_install", "bookconnect")
class TestCancellationAndNoShow(StripeSessionCase, MailCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.policy_fees = cls._make_policy(
            mode="session",
            rate=90.0,
            collection="card",
            free_cancel_hours=24,
            late_fee_kind="fixed",
            late_fee_fixed=20.0,
            no_show_fee_kind="percent",
            no_show_fee_percent=100,
            no_show_delay_minutes=15,
            review_hours=24,
        )

    def booked(self, **values):
        values.setdefault("policy_id", self.policy_fees.id)
        values.setdefault("start", self.at(0))
        return self.book(**values)

    def test_free_until_the_window_edge_late_after(self):
        edge = self.at(-24 * 60)
        free = self.booked()
        with freeze_time(edge):
            preview = self.env["bookconnect.fee.manager"]._cancellation_preview(
                free.with_user(self.client_user)
            )
            self.assertEqual((preview["late"], preview["fee"]), (False, 0.0))
            free.with_user(self.client_user).action_client_cancel()
        self.assertEqual(free.state, "cancelled")
        self.assertFalse(free.fee_state)
        late = self.booked()
        with freeze_time(edge + timedelta(seconds=1)):
            preview = self.env["bookconnect.fee.manager"]._cancellation_preview(
                late.with_user(self.client_user)
            )
            self.assertEqual((preview["late"], preview["fee"]), (True, 20.0))
            late.with_user(self.client_user).action_client_cancel()
        self.assertEqual(late.state, "late_cancelled")
        self.assertEqual(
            (late.fee_charge_id.kind, late.fee_charge_id.amount, late.fee_state),
            ("late_cancel", 20.0, "pending"),
        )
        self.assertEqual(late.fee_charge_id.due_at, edge + timedelta(seconds=1, hours=24))
        with self.assertRaises(UserError):
            late.with_user(self.client_user).action_client_cancel()

    def test_percentage_fee_and_practice_cancellation_is_free(self):
        self.policy_fees.write({"late_fee_kind": "percent", "late_fee_percent": 50})
        session = self.booked()
        with freeze_time(self.at(-60)):
            self.assertEqual(
                self.env["bookconnect.fee.manager"]._cancellation_preview(session)["fee"], 45.0
            )
            session.with_user(self.therapist).action_cancel()
        self.assertEqual(session.state, "cancelled")
        self.assertFalse(session.fee_state)

    def test_fee_is_charged_only_after_the_review_window(self):
        session = self.booked()
        with freeze_time(self.at(-60)):
            session.with_user(self.client_user).action_client_cancel()
        with freeze_time(self.at(-60) + timedelta(hours=23, minutes=59)):
            self.env["bookconnect.fee.manager"]._cron_charge_fees()
        self.assertEqual(session.fee_state, "pending")
        self.assertFalse(session.invoice_ids)
        with freeze_time(self.at(-60) + timedelta(hours=24, minutes=1)):
            self.env["bookconnect.fee.manager"]._cron_charge_fees()
            self.env["bookconnect.fee.manager"]._cron_charge_fees()  # twice: one invoice
        self.assertEqual(session.fee_state, "charged")
        fee_invoice = session.invoice_ids
        self.assertEqual(len(fee_invoice), 1)
        self.assertEqual(fee_invoice.bookconnect_charge_ids.kind, "late_cancel")
        self.assertAlmostEqual(fee_invoice.amount_total, 20.0)
        self.assertIn("Late cancellation fee", fee_invoice.invoice_line_ids.name)
        self.assertIn(fee_invoice.payment_state, ("paid", "in_payment"))
        self.assertEqual(self.calls("payment_intents")[0]["payload"]["amount"], 2000)

    def test_waiver_within_the_review_window(self):
        session = self.booked()
        with freeze_time(self.at(-60)):
            session.with_user(self.client_user).action_client_cancel()
        with freeze_time(self.at(60)):
            action = session.with_user(self.therapist).action_waive_fee()
            wizard = (
                self.env[action["res_model"]]
                .with_user(self.therapist)
                .with_context(**action["context"])
                .create({"reason": "Family emergency"})
            )
            wizard.action_waive()
        self.assertEqual(
            (session.fee_state, session.fee_charge_id.waiver_reason), ("waived", "Family emergency")
        )
        [note] = session.message_ids.filtered(lambda m: "Family emergency" in m.body)
        self.assertEqual(note.author_id, self.therapist.partner_id)
        with freeze_time(self.at(48 * 60)):
            self.env["bookconnect.fee.manager"]._cron_charge_fees()
        self.assertFalse(session.invoice_ids)
        self.assertFalse(self.stripe_calls)
        with self.assertRaisesRegex(UserError, "no fee in review"):
            session.with_user(self.therapist)._waive_fee("again")
        other = self.booked()
        with freeze_time(self.at(-60)):
            other.with_user(self.client_user).action_client_cancel()
        with self.assertRaisesRegex(ValidationError, "Say why"):
            other.with_user(self.therapist)._waive_fee(" ")

    def test_first_offence_is_waived_once_per_client(self):
        self.policy_fees.waive_first_offence = True
        first = self.booked()
        with freeze_time(self.at(-60)):
            first.with_user(self.client_user).action_client_cancel()
        self.assertEqual(first.fee_state, "waived")
        self.assertTrue(first.message_ids.filtered(lambda m: "the client's first" in m.body))
        second = self.booked()
        with freeze_time(self.at(-30)):
            second.with_user(self.client_user).action_client_cancel()
        self.assertEqual(second.fee_state, "pending")
        other_client = self.booked(client=self.client_b)
        with freeze_time(self.at(20)):
            self.env["bookconnect.fee.manager"]._cron_detect_no_shows()
        self.assertEqual((other_client.state, other_client.fee_state), ("no_show", "waived"))

    def test_no_show_detection(self):
        absent = self.booked()
        present = self.booked(client=self.client_b)
        self.external(present, "client", "joined", 2)
        with freeze_time(self.at(14)):
            self.env["bookconnect.fee.manager"]._cron_detect_no_shows()
        self.assertEqual(absent.state, "scheduled")
        with freeze_time(self.at(15)):
            self.env["bookconnect.fee.manager"]._cron_detect_no_shows()
        self.assertEqual(absent.state, "no_show")
        self.assertEqual(
            (absent.fee_charge_id.kind, absent.fee_charge_id.amount, absent.fee_state),
            ("no_show", 90.0, "pending"),
        )
        self.assertEqual(present.state, "in_progress")

    def test_therapist_marks_a_no_show(self):
        session = self.booked()
        with freeze_time(self.at(-5)), self.assertRaisesRegex(UserError, "not started"):
            session.with_user(self.therapist).action_mark_no_show()
        with freeze_time(self.at(5)):
            session.with_user(self.therapist).action_mark_no_show()
        self.assertEqual(session.state, "no_show")
        joined = self.booked()
        self.external(joined, "client", "joined", 1)
        with freeze_time(self.at(5)), self.assertRaisesRegex(UserError, "joined"):
            joined.with_user(self.therapist).action_mark_no_show()

    def test_late_fee_is_taken_from_the_card_hold(self):
        policy = self.policy(
            mode="session",
            rate=90.0,
            collection="card",
            prepayment="hold",
            hold_hours_before=48,
            free_cancel_hours=24,
            late_fee_kind="fixed",
            late_fee_fixed=20.0,
            review_hours=1,
        )
        session = self.booked(policy_id=policy.id)
        with freeze_time(self.at(-30 * 60)):
            self.env["bookconnect.card.hold"]._cron_place_holds()
        hold = session._active_hold()
        self.assertEqual(hold.state, "authorized")
        with freeze_time(self.at(-60)):
            session.with_user(self.client_user).action_client_cancel()
        with freeze_time(self.at(30)):
            self.env["bookconnect.fee.manager"]._cron_charge_fees()
        [capture] = self.calls(f"payment_intents/{hold.provider_reference}/capture")
        self.assertEqual(capture["payload"]["amount_to_capture"], 2000)
        self.assertEqual(hold.amount, 20.0)
        self.assertEqual(len(self.calls("payment_intents")), 1, "no separate charge")


@tagged("post_install", "-at_install", "bookconnect")
class TestPolicyInPlainWords(StripeSessionCase, MailCase):
    def test_summary_from_fields(self):
        policy = self.policy(
            mode="minute",
            rate=0.65,
            collection="card",
            free_cancel_hours=24,
            late_fee_kind="fixed",
            late_fee_fixed=20.0,
            no_show_fee_kind="percent",
            no_show_fee_percent=100,
            review_hours=24,
        )
        money = policy.currency_id.format
        self.assertEqual(
            policy._client_summary().split("\n"),
            [
                f"Sessions cost {money(0.65)} a minute.",
                "Every started minute is billed.",
                "After each session, the amount is charged to your saved card.",
                f"Cancelling is free until 24 hours before the start; after that, it costs "
                f"{money(20.0)}.",
                "If you book less than 24 hours ahead, cancelling costs this fee from the moment "
                "you book.",
                "If you have not joined 15 minutes after the start, the session counts as missed "
                "and costs the full price of the session.",
                "A fee is charged 24 hours after it applies; until then, the practice may waive "
                "it.",
            ],
        )
        policy.write(
            {
                "mode": "hour",
                "rate": 100,
                "rounding_increment": 15,
                "minimum_minutes": 30,
                "maximum_minutes": 120,
                "prepayment": "hold",
                "hold_hours_before": 24,
                "cancel_grace_minutes": 10,
                "no_show_fee_kind": "none",
            }
        )
        self.assertEqual(
            policy._client_summary().split("\n"),
            [
                f"Sessions cost {money(100.0)} an hour.",
                "Time is billed in steps of 15 minutes, rounded up.",
                "Each call is billed for at least 30 minutes.",
                "No call is billed for more than 120 minutes.",
                "24 hours before the session, the expected amount is held on your saved card; "
                "after the session, only what you used is taken and the rest is released.",
                "Time beyond the held amount is charged to your saved card.",
                "You need a saved card to book.",
                f"Cancelling is free until 24 hours before the start; after that, it costs "
                f"{money(20.0)}.",
                "If you book less than 24 hours ahead, you can still cancel free for 10 minutes "
                "after booking.",
                "Missing a session costs nothing.",
                "A fee is charged 24 hours after it applies; until then, the practice may waive "
                "it.",
            ],
        )
        policy.write(
            {
                "mode": "session",
                "rate": 90,
                "prepayment": "full",
                "late_fee_kind": "none",
                "no_show_fee_kind": "none",
            }
        )
        self.assertEqual(
            policy._client_summary().split("\n"),
            [
                f"A session costs {money(90.0)}.",
                "When you book, you pay for the booked time in full: it is charged to your saved "
                "card.",
                "Cancelling is free.",
                "Missing a session costs nothing.",
            ],
        )
        policy.write(
            {
                "mode": "minute",
                "rate": 0.65,
                "prepayment": "balance",
                "minimum_balance": 5,
                "overrun": "end",
                "collection": "portal",
            }
        )
        self.assertIn(
            "When your balance runs out, the call ends.", policy._client_summary().split("\n")
        )
        self.assertIn(f"at least {money(5.0)} on your balance", policy._client_summary())

    def test_summary_in_the_clients_language(self):
        self.env["res.lang"]._activate_lang("fr_FR")
        policy = self.policy(mode="minute", rate=1234.5, collection="card")
        self.assertIn("1,234.50", policy._client_summary("en_US"))
        self.assertIn("1\N{NO-BREAK SPACE}234,50", policy._client_summary("fr_FR"))

    def test_changing_a_clients_policy_tells_them_the_new_terms(self):
        new = self.policy(mode="session", rate=75.0, collection="card")
        with self.mock_mail_gateway():
            self.client.bookconnect_policy_id = new
        mail = self.mails("New terms")
        self.assertEqual(mail.recipient_ids, self.client)
        self.assertIn("A session costs", mail.body_html)
        with self.mock_mail_gateway():
            self.client.bookconnect_policy_id = new  # unchanged: nothing sent
        self.assertFalse(self.mails("New terms"))
