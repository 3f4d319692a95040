from datetime import datetime, timedelta

from odoo import Command
from odoo.tests import TransactionCase


class BookconnectCase(TransactionCase):
    """Company, people and policies that most tests share; helpers that keep tests short."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env = cls.env(
            context=dict(cls.env.context, tracking_disable=True, no_reset_password=True)
        )
        cls.company = cls.env.company
        cls.currency = cls.company.currency_id
        cls.group_therapist = cls.env.ref("bookconnect_therapy.group_therapist")
        cls.group_manager = cls.env.ref("bookconnect_therapy.group_practice_manager")
        cls.manager = cls._make_user("Pat Manager", "pm", [cls.group_manager])
        cls.therapist = cls._make_user("Alex Therapist", "ta", [cls.group_therapist])
        cls.therapist_b = cls._make_user("Blair Therapist", "tb", [cls.group_therapist])
        cls.policy_minute = cls.env["bookconnect.billing.policy"].create(
            {"name": "Per minute", "mode": "minute", "rate": 0.65, "currency_id": cls.currency.id}
        )
        cls.policy_session = cls.env["bookconnect.billing.policy"].create(
            {"name": "Per session", "mode": "session", "rate": 90, "currency_id": cls.currency.id}
        )

    @classmethod
    def _make_user(cls, name, login, groups, portal=False):
        base = cls.env.ref("base.group_portal" if portal else "base.group_user")
        return cls.env["res.users"].create(
            {
                "name": name,
                "login": f"bc_{login}",
                "email": f"{login}@example.com",
                "groups_id": [Command.set([base.id] + [g.id for g in groups])],
            }
        )

    def policy(self, **values):
        values.setdefault("name", "Test policy")
        values.setdefault("currency_id", self.currency.id)
        return self.env["bookconnect.billing.policy"].create(values)


class SessionCase(BookconnectCase):
    """Clients, a company policy, and helpers to book, meter and end sessions."""

    T0 = datetime(2026, 11, 27, 10, 0)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company.bookconnect_policy_id = cls.policy_minute
        cls.company.sudo().bookconnect_call_secret = "s3cret-for-tests"
        cls.client_user = cls._make_user("Casey Client", "cc", [], portal=True)
        cls.client = cls.client_user.partner_id
        cls.client_b_user = cls._make_user("Dana Client", "dc", [], portal=True)
        cls.client_b = cls.client_b_user.partner_id
        cls.client.email = "casey@example.com"

    def book(self, start=None, minutes=50, therapist=None, client=None, **values):
        start = start or self.T0
        values.update(
            {
                "therapist_id": (therapist or self.therapist).id,
                "partner_id": (client or self.client).id,
                "start": start,
                "stop": start + timedelta(minutes=minutes),
            }
        )
        return self.env["bookconnect.therapy.session"].create(values)

    def at(self, minutes, seconds=0):
        return self.T0 + timedelta(minutes=minutes, seconds=seconds)

    def external(self, session, role, kind, minute, uid=None):
        """Record an external join/leave event ``minute`` minutes after T0."""
        uid = uid or f"{role}-{kind}-{minute}"
        return session.call_id._record_external_event(uid, kind, role, self.at(minute))

    def discuss_member(self, session, role):
        """The Discuss channel member of ``role`` in the session's call (created on demand)."""
        event = session.calendar_event_id.sudo()
        if not event.videocall_channel_id:
            event._create_videocall_channel()
        partner = session._participant_partner(role)
        channel = event.videocall_channel_id
        return channel.channel_member_ids.filtered(lambda m: m.partner_id == partner)
