from lxml import etree

from odoo.exceptions import AccessError, ValidationError
from odoo.tests import Form, tagged

from .common import BookconnectCase


@tagged("post_install", "-at_install", "bookconnect")
class TestTherapySettings(BookconnectCase):
    """Practice managers change the practice's settings on the Therapy settings page; the
    call-events secret stays with system administrators."""

    def settings_form(self, user):
        return Form(self.env["bookconnect.therapy.settings"].with_user(user))

    def test_practice_managers_open_and_save_them(self):
        self.company.write({"bookconnect_reminder_hours": "24,1", "bookconnect_policy_id": False})
        form = self.settings_form(self.manager)
        self.assertEqual(form.bookconnect_reminder_hours, "24,1")
        form.bookconnect_reminder_hours = "48,2"
        form.bookconnect_booking_slot_minutes = 45
        form.bookconnect_policy_id = self.policy_session
        form.save()
        self.assertEqual(self.company.bookconnect_reminder_hours, "48,2")
        self.assertEqual(self.company.bookconnect_booking_slot_minutes, 45)
        self.assertEqual(self.company.bookconnect_policy_id, self.policy_session)
        # and find them there the next time
        self.assertEqual(self.settings_form(self.manager).bookconnect_booking_slot_minutes, 45)

    def test_bad_values_get_a_clear_error_and_change_nothing(self):
        for field, value, message in (
            ("bookconnect_reminder_hours", "tomorrow", "whole numbers separated by commas"),
            ("bookconnect_booking_slot_minutes", 0, "sessions last 5 to 720 minutes"),
            ("bookconnect_auto_end_minutes", 0, "at least 1 for ending calls"),
        ):
            before = self.company[field]
            form = self.settings_form(self.manager)
            setattr(form, field, value)
            with (
                self.subTest(field=field),
                self.assertRaisesRegex(ValidationError, message),
                self.env.cr.savepoint(),  # as the request's transaction is
            ):
                form.save()
            self.assertEqual(self.company[field], before)

    def test_only_practice_managers_of_the_company(self):
        with self.assertRaises(AccessError):
            self.env["bookconnect.therapy.settings"].with_user(self.therapist).create(
                {"bookconnect_booking_slot_minutes": 30}
            )
        other = self.env["res.company"].create({"name": "Other practice"})
        with self.assertRaises(AccessError):
            self.env["bookconnect.therapy.settings"].with_user(self.manager).create(
                {"company_id": other.id, "bookconnect_booking_slot_minutes": 30}
            )
        self.assertEqual(other.bookconnect_booking_slot_minutes, 50)

    def test_the_call_events_secret_stays_with_system_administrators(self):
        self.assertNotIn("bookconnect_call_secret", self.env["bookconnect.therapy.settings"])
        self.company.sudo().bookconnect_call_secret = "s3cret"
        form = self.settings_form(self.manager)
        self.assertNotIn("s3cret", str(form._values))
        with self.assertRaises(AccessError):
            self.company.with_user(self.manager).read(["bookconnect_call_secret"])
        # The Settings app keeps it, and a way to the practice's other settings.
        admin = self.env.ref("base.user_admin")
        self.assertEqual(
            self.env["res.config.settings"]._fields["bookconnect_call_secret"].groups,
            "base.group_system",
        )
        views = self.env["res.config.settings"].with_user(admin).get_views([(False, "form")])
        arch = etree.fromstring(views["views"]["form"]["arch"])
        [app] = arch.xpath("//app[@name='bookconnect_therapy']")
        self.assertEqual(
            [node.get("name") for node in app.iter("field")], ["bookconnect_call_secret"]
        )
        action = self.env.ref("bookconnect_therapy.bookconnect_therapy_settings_action")
        self.assertTrue(app.xpath(f".//button[@name='{action.id}']"))
        self.assertTrue(admin.has_group("bookconnect_therapy.group_practice_manager"))
        self.assertEqual(
            self.env.ref("bookconnect_therapy.bookconnect_therapy_settings_menu").action, action
        )
