from datetime import timedelta

from odoo import fields
from odoo.tests import tagged

from .common import StripeSessionCase
from .web_client import WebClient

MODULE = "bookconnect_therapy"


@tagged("post_install", "-at_install", "bookconnect")
class TestEveryScreenForEveryRole(StripeSessionCase):
    """Every screen the addon offers opens for every role it is shown to, exactly as the web
    client opens it: the menus come from the database (the module's own, and any whose action
    is on one of the addon's models), so a new screen is covered without a new test."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        invoicing = cls.env.ref("account.group_account_invoice")
        cls.accountant = cls._make_user("Avery Accountant", "acc", [invoicing])
        cls.manager_invoicing = cls._make_user(
            "Morgan Manager", "pmi", [cls.group_manager, invoicing]
        )
        cls.admin = cls.env.ref("base.user_admin")
        cls.policy_portal = cls._make_policy(mode="minute", rate=1.0, collection="portal")
        cls.policy_fees = cls._make_policy(
            mode="session",
            rate=80,
            collection="card",
            free_cancel_hours=24,
            late_fee_kind="fixed",
            late_fee_fixed=20,
            no_show_fee_kind="fixed",
            no_show_fee_fixed=40,
        )
        cls.policy_hold = cls._make_policy(
            mode="minute", rate=1.0, collection="card", prepayment="hold", hold_hours_before=24
        )
        cls.policy_upfront = cls._make_policy(
            mode="session", rate=90, collection="card", prepayment="full"
        )

    def setUp(self):
        super().setUp()
        self.addon_models = {
            name
            for name, model in self.env.registry.items()
            if getattr(model, "_original_module", None) == MODULE
        }
        self.sessions = self._sessions_in_every_state()

    def _sessions_in_every_state(self):
        now = fields.Datetime.now().replace(microsecond=0)
        book = self.book
        sessions = {
            "scheduled": book(start=now + timedelta(days=3)),
            "chat": book(start=now + timedelta(days=2), channel="chat"),
            "paid up front": book(start=now + timedelta(days=4), policy_id=self.policy_upfront.id),
            "held on the card": book(start=now + timedelta(hours=5), policy_id=self.policy_hold.id),
            "in progress": book(start=now - timedelta(minutes=10)),
            "charged": self.held(35),
            "portal": self.held(20, policy_id=self.policy_portal.id),
            "nothing to bill": book(start=self.at(-24 * 60)),
            "no-show": book(start=now - timedelta(minutes=30), policy_id=self.policy_fees.id),
            "late cancel": book(start=now + timedelta(hours=2), policy_id=self.policy_fees.id),
            "cancelled": book(start=now + timedelta(days=5)),
            "another therapist's": self.held(20, therapist=self.therapist_b, client=self.client_b),
        }
        self.env["bookconnect.collector"]._place_holds(sessions["held on the card"])
        in_progress = sessions["in progress"].call_id
        in_progress._replay_external_events([("t1", "joined", "therapist", 0)])._mark_in_progress()
        for key in ("charged", "portal", "nothing to bill", "another therapist's"):
            sessions[key].action_end_session()
        self.stripe_answers["payment_intents"] = {
            "error": {"code": "card_declined", "message": "Your card was declined.", "type": "x"}
        }
        sessions["declined"] = self.held(30)
        sessions["declined"].action_end_session()
        del self.stripe_answers["payment_intents"]
        sessions["no-show"].action_mark_no_show()
        sessions["late cancel"].with_user(self.client_user).action_client_cancel()
        sessions["cancelled"].action_cancel()
        return sessions

    def _addon_menus(self):
        """The module's menus, and every menu whose window action is on one of its models."""
        Menu = self.env["ir.ui.menu"].with_context(**{"ir.ui.menu.full_list": True})
        menu_ids = (
            self.env["ir.model.data"]
            .search([("module", "=", MODULE), ("model", "=", "ir.ui.menu")])
            .mapped("res_id")
        )
        on_addon_models = Menu.search([("action", "like", "ir.actions.act_window,")]).filtered(
            lambda m: m.action.res_model in self.addon_models
        )
        return Menu.browse(menu_ids) | on_addon_models

    def test_every_screen_opens_for_every_role(self):
        roles = {
            "therapist": self.therapist,
            "practice manager": self.manager,
            "practice manager with Invoicing": self.manager_invoicing,
            "accountant (Invoicing only)": self.accountant,
            "administrator": self.admin,
        }
        menus = self._addon_menus()
        failures, clients = [], {}
        for label, user in roles.items():
            client = WebClient(self.env, user, label, button_models=self.addon_models)
            client.seen = client.visible_menus(menus)
            for menu in client.seen:
                client.open_menu(menu)
            failures += client.failures
            clients[label] = client
        self.assertFalse(failures, "\n".join(failures))

        # What each role is shown: the test would prove little if a role saw nothing.
        def menu(xmlid):
            return self.env.ref(f"{MODULE}.{xmlid}")

        sessions, settings = (
            menu("bookconnect_therapy_session_menu"),
            menu("bookconnect_therapy_settings_menu"),
        )
        invoices = menu("account_move_bookconnect_menu")
        expected = {
            "therapist": (sessions, settings | invoices),
            "practice manager": (sessions | settings, invoices),
            "practice manager with Invoicing": (sessions | settings | invoices, menus.browse()),
            "accountant (Invoicing only)": (invoices, sessions | settings),
            "administrator": (menus, menus.browse()),
        }
        for label, (shown, hidden) in expected.items():
            client = clients[label]
            self.assertEqual(client.seen & shown, shown, f"{label} misses screens")
            self.assertFalse(client.seen & hidden, f"{label} sees screens not meant for them")
            opened = {kind for _where, kind in client.opened}
            self.assertIn("form", opened, f"{label} opened no existing record")
            self.assertIn("form new", opened, f"{label} opened no new record")
        therapist_opened = [where for where, _kind in clients["therapist"].opened]
        for followed in ("button action_correct_minutes", "link partner_id", "link policy_id"):
            self.assertTrue(
                any(followed in where for where in therapist_opened),
                f"the therapist's walk did not follow {followed}",
            )

        # The Sessions screen shows the practice's sessions to its managers, a therapist's own
        # to a therapist.
        def listed(label):
            ids = [
                record_id
                for where, ids in clients[label].listed.items()
                if where.startswith(f"menu {sessions.complete_name}: list")
                for record_id in ids
            ]
            return self.env["bookconnect.therapy.session"].browse(ids)

        theirs = self.sessions["another therapist's"]
        self.assertIn(theirs, listed("practice manager"))
        self.assertIn(self.sessions["charged"], listed("practice manager"))
        self.assertNotIn(theirs, listed("therapist"))
        self.assertIn(self.sessions["charged"], listed("therapist"))
