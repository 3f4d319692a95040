from odoo import _, api, fields, models
from odoo.exceptions import AccessError


class BookconnectTherapySettings(models.TransientModel):
    """The practice's Therapy settings page, for practice managers (Therapy > Configuration >
    Settings): a form over the current company's settings that saves them to it.

    Odoo's Settings app saves through ``res.config.settings.execute``, which only system
    administrators may run; it keeps what stays theirs, the call-events secret.
    """

    _name = "bookconnect.therapy.settings"
    _description = "Therapy settings"

    company_id = fields.Many2one(
        "res.company", required=True, readonly=True, default=lambda self: self.env.company
    )
    bookconnect_policy_id = fields.Many2one(
        related="company_id.bookconnect_policy_id",
        readonly=False,
        domain="[('company_id', 'in', (company_id, False))]",
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

    @api.model
    def _company_settings(self):
        """Names of the fields saved to the company (those related to it)."""
        return [
            name
            for name, field in self._fields.items()
            if field.related and field.related.split(".")[0] == "company_id"
        ]

    @api.model_create_multi
    def create(self, vals_list):
        names = self._company_settings()
        to_save = [{name: vals.pop(name) for name in names if name in vals} for vals in vals_list]
        records = super().create(vals_list)
        for record, values in zip(records, to_save, strict=True):
            record._save_to_company(values)
        return records

    def write(self, vals):
        names = self._company_settings()
        values = {name: vals.pop(name) for name in names if name in vals}
        result = super().write(vals)
        for record in self:
            record._save_to_company(values)
        return result

    def _save_to_company(self, values):
        """Write the settings to the company, for a practice manager of that company.

        :raise AccessError: for anyone else.
        :raise ValidationError: the company's own, for values that make no sense.
        """
        self.ensure_one()
        if not values:
            return
        user = self.env.user
        if not user.has_group("bookconnect_therapy.group_practice_manager") or (
            self.company_id not in user.company_ids
        ):
            raise AccessError(
                _(
                    "Only the practice managers of %(company)s change its Therapy settings.",
                    company=self.company_id.name,
                )
            )
        # sudo: practice managers may not write companies; they change these settings only.
        company_sudo = self.company_id.sudo()
        company_sudo.write(values)

    def action_save(self):
        """The form's Save button: the web client saves the record (so the company) first."""
        return True
