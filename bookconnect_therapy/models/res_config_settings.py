from odoo import fields, models


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    bookconnect_policy_id = fields.Many2one(
        related="company_id.bookconnect_policy_id", readonly=False
    )
    bookconnect_call_secret = fields.Char(
        related="company_id.bookconnect_call_secret", readonly=False, groups="base.group_system"
    )
    bookconnect_auto_end_minutes = fields.Integer(
        related="company_id.bookconnect_auto_end_minutes", readonly=False
    )
    bookconnect_overdue_end_minutes = fields.Integer(
        related="company_id.bookconnect_overdue_end_minutes", readonly=False
    )
    bookconnect_join_before_minutes = fields.Integer(
        related="company_id.bookconnect_join_before_minutes", readonly=False
    )
    bookconnect_reminder_hours = fields.Char(
        related="company_id.bookconnect_reminder_hours", readonly=False
    )
    bookconnect_payment_reminders = fields.Boolean(
        related="company_id.bookconnect_payment_reminders", readonly=False
    )
    bookconnect_payment_reminder_days = fields.Char(
        related="company_id.bookconnect_payment_reminder_days", readonly=False
    )
    bookconnect_booking_slot_minutes = fields.Integer(
        related="company_id.bookconnect_booking_slot_minutes", readonly=False
    )
    bookconnect_booking_buffer_minutes = fields.Integer(
        related="company_id.bookconnect_booking_buffer_minutes", readonly=False
    )
    bookconnect_booking_notice_hours = fields.Integer(
        related="company_id.bookconnect_booking_notice_hours", readonly=False
    )
    bookconnect_booking_horizon_days = fields.Integer(
        related="company_id.bookconnect_booking_horizon_days", readonly=False
    )
    bookconnect_booking_confirm_minutes = fields.Integer(
        related="company_id.bookconnect_booking_confirm_minutes", readonly=False
    )
    bookconnect_booking_new_clients = fields.Boolean(
        related="company_id.bookconnect_booking_new_clients", readonly=False
    )
