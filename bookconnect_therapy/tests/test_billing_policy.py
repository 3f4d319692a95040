from odoo.exceptions import AccessError, ValidationError
from odoo.tests import Form, tagged

from .common import BookconnectCase


@tagged("post_install", "-at_install", "bookconnect")
class TestBillingPolicy(BookconnectCase):
    def test_product_follows_the_mode(self):
        minute = self.env.ref("bookconnect_therapy.uom_minute")
        self.assertEqual(self.policy_minute.product_id.uom_id, minute)
        self.assertEqual(minute.category_id, self.env.ref("uom.uom_categ_wtime"))
        self.assertEqual(
            self.policy_session.product_id.uom_id, self.env.ref("uom.product_uom_unit")
        )
        with Form(self.policy_session) as form:
            form.mode = "hour"
        self.assertEqual(
            self.policy_session.product_id.uom_id, self.env.ref("uom.product_uom_hour")
        )

    def test_minute_is_a_working_time_unit(self):
        minute = self.env.ref("bookconnect_therapy.uom_minute")
        hour = self.env.ref("uom.product_uom_hour")
        self.assertAlmostEqual(hour._compute_quantity(1, minute), 60)

    def test_price_preview(self):
        with Form(self.policy_minute) as form:
            form.preview_minutes = 35
            self.assertEqual(form.preview_amount, 22.75)
            form.rounding_increment = 10
            self.assertEqual(form.preview_amount, 26.0)  # 40 minutes
            form.grace_minutes = 40
            self.assertEqual(form.preview_amount, 0.0)

    def test_engine_prices_in_the_policy_currency(self):
        jpy = self.env.ref("base.JPY")
        jpy.active = True
        policy = self.policy(mode="minute", rate=33, currency_id=jpy.id)
        self.assertEqual(float(policy._price(35 * 60).amount), 1155.0)
        hourly = self.policy(mode="hour", rate=100, rounding_increment=15)
        price = hourly._price(37 * 60)
        self.assertEqual(
            (price.billable_minutes, float(price.quantity), float(price.amount)), (45, 0.75, 75.0)
        )

    def test_nonsense_gets_a_clear_error(self):
        cases = [
            ({"rate": -1}, "cannot be negative"),
            ({"late_fee_fixed": -5}, "cannot be negative"),
            ({"grace_minutes": -1}, "cannot be negative"),
            ({"rounding_increment": 0}, "at least 1 minute"),
            ({"minimum_minutes": 30, "maximum_minutes": 10}, "below the minimum"),
            ({"late_fee_percent": 150}, "between 0 and 100"),
            ({"hold_hours_before": 200}, "about 7 days"),
            ({"reminder_hours": "24,soon"}, "whole numbers"),
            ({"reminder_hours": "0"}, "whole numbers"),
            ({"mode": "session", "prepayment": "balance"}, "not per session"),
        ]
        for values, message in cases:
            with self.subTest(values=values), self.assertRaisesRegex(ValidationError, message):
                self.policy(mode=values.pop("mode", "minute"), rate=values.pop("rate", 1), **values)

    def test_product_unit_must_match_the_mode(self):
        with self.assertRaisesRegex(ValidationError, "counted in Minutes"):
            self.policy(
                mode="minute",
                rate=1,
                product_id=self.env.ref("bookconnect_therapy.product_online_session").id,
            )
        with self.assertRaisesRegex(ValidationError, "counted in Hours"):
            self.policy(
                mode="hour",
                rate=1,
                product_id=self.env.ref("bookconnect_therapy.product_online_minute").id,
            )

    def test_reminder_hours_parse(self):
        policy = self.policy(mode="session", rate=1, reminder_hours=" 1, 24 ,24")
        self.assertEqual(policy._reminder_hours(), [24, 1])

    def test_fees(self):
        policy = self.policy(
            mode="session",
            rate=90,
            late_fee_kind="percent",
            late_fee_percent=50,
            no_show_fee_kind="fixed",
            no_show_fee_fixed=30,
        )
        self.assertEqual(float(policy._fee("late", 90)), 45.0)
        self.assertEqual(float(policy._fee("no_show", 90)), 30.0)

    def test_channel_rates(self):
        policy = self.policy(
            mode="minute", rate=0.65, channel_rates=True, rate_voice=0.5, rate_chat=0.4
        )
        self.assertEqual(float(policy._price(600, "voice").amount), 5.0)
        self.assertEqual(float(policy._price(600, "chat").amount), 4.0)
        self.assertEqual(float(policy._price(600, "video").amount), 6.5)
        policy.channel_rates = False
        self.assertEqual(float(policy._price(600, "chat").amount), 6.5)

    def test_access(self):
        as_therapist = self.policy_minute.with_user(self.therapist)
        self.assertEqual(as_therapist.name, "Per minute")
        with self.assertRaises(AccessError):
            as_therapist.write({"rate": 0.1})
        with self.assertRaises(AccessError):
            self.env["bookconnect.billing.policy"].with_user(self.therapist).create(
                {"name": "Mine", "mode": "session", "rate": 1}
            )
        self.policy_minute.with_user(self.manager).write({"rate": 0.7})
        self.assertEqual(self.policy_minute.rate, 0.7)
