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
