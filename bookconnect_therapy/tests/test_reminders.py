from unittest.mock import patch

from freezegun import freeze_time

from odoo.exceptions import ValidationError
from odoo.tests import tagged

from odoo.addons.mail.tests.common import MailCase

from ..models import bookconnect_reminder_manager as manager_module
from .common import StripeSessionCase


@tagged("post_install", "-at_install", "bookconnect")
class TestReminders(StripeSessionCase, MailCase):
    def setUp(self):
        super().setUp()
        self.company.bookconnect_reminder_hours = "24,1"

    def run_reminders(self, when, session=None):
        with freeze_time(when), self.mock_mail_gateway():
            self.env["bookconnect.reminder.manager"]._cron_send_reminders()
        session = session or self.session
        return self.mails("Reminder: your session").filtered(
            lambda m: m.model == session._name and m.res_id == session.id
        )

    def book_early(self, **values):
        booked_at = self.at(-7 * 24 * 60)
        with freeze_time(booked_at):
            self.session = self.book(start=self.at(0), **values)
        # the booking time, as the database would have stamped it a week ago
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE bookconnect_therapy_session SET create_date = %s WHERE id = %s",
            (booked_at, self.session.id),
        )
        self.session.invalidate_recordset(["create_date"])
        return self.session

    def test_reminders_are_sent_once_per_offset(self):
        session = self.book_early()
        self.assertFalse(self.run_reminders(self.at(-25 * 60)))
        first = self.run_reminders(self.at(-24 * 60 + 1))
        self.assertEqual(first.recipient_ids, self.client)
        self.assertIn(session.videocall_url, first.body_html)
        self.assertFalse(self.run_reminders(self.at(-23 * 60)), "the job runs again: nothing")
        second = self.run_reminders(self.at(-59))
        self.assertEqual(len(second), 1)
        self.assertFalse(self.run_reminders(self.at(-30)))
        logs = self.env["bookconnect.reminder.log"].search([("session_id", "=", session.id)])
        self.assertEqual(sorted(logs.mapped("offset")), [1, 24])

    def test_reminders_go_out_in_batches(self):
        first = self.book_early()
        second = self.book_early(client=self.client_b)
        self.client_b.email = "dana@example.com"
        manager = self.env["bookconnect.reminder.manager"]
        sent = self.env["bookconnect.reminder.log"]
        for expected_remaining in (1, 0):
            with (
                freeze_time(self.at(-59)),
                self.mock_mail_gateway(),
                patch.object(type(self.env["ir.cron"]), "_notify_progress") as progress,
            ):
                manager._cron_send_reminders(batch_size=1)
            progress.assert_called_once_with(done=1, remaining=expected_remaining)
            logs = self.env["bookconnect.reminder.log"].search([("kind", "=", "session")])
            self.assertEqual(len(logs - sent), 1)
            sent = logs
        self.assertEqual(sent.session_id, first | second)

    def test_moved_session_is_not_reminded_twice(self):
        session = self.book_early()
        self.assertTrue(self.run_reminders(self.at(-24 * 60 + 1)))
        session.write({"start": self.at(30), "stop": self.at(80)})
        self.assertFalse(self.run_reminders(self.at(-24 * 60 + 40)))

    def test_no_reminder_for_cancelled_sessions(self):
        session = self.book_early()
        with freeze_time(self.at(-3 * 24 * 60)):
            session.with_user(self.client_user).action_client_cancel()
        self.assertFalse(self.run_reminders(self.at(-24 * 60 + 1)))
        self.assertFalse(self.run_reminders(self.at(-30)))

    def test_sms_when_a_valid_mobile_exists(self):
        self.client.write(
            {"country_id": self.env.ref("base.uk").id, "bookconnect_mobile": "07911 123456"}
        )
        self.assertEqual(self.client.bookconnect_mobile, "+447911123456")
        session = self.book_early()
        self.run_reminders(self.at(-59))
        sms = self.env["sms.sms"].search([("partner_id", "=", self.client.id)])
        self.assertEqual(sms.number, "+447911123456")
        self.assertIn("Join", sms.body)
        log = self.env["bookconnect.reminder.log"].search([("session_id", "=", session.id)])
        self.assertEqual(log.channels, "email, sms")

    def test_sms_skipped_with_a_reason_without_the_sms_module(self):
        self.client.write({"bookconnect_mobile": "+447911123456"})
        session = self.book_early()
        Manager = type(self.env["bookconnect.reminder.manager"])
        with (
            patch.object(Manager, "_sms_available", lambda self: False),
            patch.object(manager_module._logger, "info") as log_info,
        ):
            mails = self.run_reminders(self.at(-59))
        self.assertEqual(len(mails), 1, "the email still goes")
        self.assertIn("sms module is not installed", log_info.call_args[0][0])
        log = self.env["bookconnect.reminder.log"].search([("session_id", "=", session.id)])
        self.assertIn("not installed", log.channels)
        self.assertFalse(self.env["sms.sms"].search([("partner_id", "=", self.client.id)]))

    def test_invalid_phone_numbers_are_refused(self):
        self.client.country_id = self.env.ref("base.uk")
        for bad in ("12", "not a number", "+44 1234", "0770090012345678"):
            with self.subTest(bad=bad), self.assertRaises(ValidationError):
                self.client.bookconnect_mobile = bad
        self.client.country_id = self.env.ref("base.fr")
        self.client.bookconnect_mobile = "06 12 34 56 78"
        self.assertEqual(self.client.bookconnect_mobile, "+33612345678")

    def test_booking_confirmation_states_the_terms(self):
        with freeze_time(self.at(-48 * 60)), self.mock_mail_gateway():
            session = self.book(start=self.at(0), policy_id=self.policy_card.id)
        mail = self.mails("is booked")
        self.assertEqual(mail.recipient_ids, self.client)
        self.assertIn("a minute", mail.body_html)
        self.assertIn(session.access_url, mail.body_html)


@tagged("post_install", "-at_install", "bookconnect")
class TestPaymentReminders(StripeSessionCase, MailCase):
    def test_reminders_follow_the_schedule_and_stop_once_paid(self):
        self.company.write(
            {"bookconnect_payment_reminders": True, "bookconnect_payment_reminder_days": "3,7,14"}
        )
        portal = self.policy(mode="minute", rate=1.0, collection="portal")
        session = self.held(30, policy_id=portal.id)
        with freeze_time("2026-11-27 11:00:00"):
            session.action_end_session()
        invoice = session.invoice_id
        self.assertEqual(str(invoice.invoice_date_due), "2026-11-27")

        def run(day):
            with freeze_time(f"{day} 09:00:00"), self.mock_mail_gateway():
                self.env["bookconnect.reminder.manager"]._cron_payment_reminders()
            return self.mails("is still open").filtered(
                lambda m: m.model == "account.move" and m.res_id == invoice.id
            )

        self.assertFalse(run("2026-11-29"))
        sent = run("2026-11-30")
        self.assertEqual(sent.recipient_ids, self.client)
        self.assertIn("access_token=", sent.body_html)
        self.assertFalse(run("2026-12-01"))
        self.assertTrue(run("2026-12-04"))
        self.env["account.payment.register"].with_context(
            active_model="account.move", active_ids=invoice.ids
        ).create({})._create_payments()
        self.assertFalse(run("2026-12-11"), "paid: no more reminders")
        self.company.bookconnect_payment_reminders = False
        self.assertFalse(run("2026-12-20"))
