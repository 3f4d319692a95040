import threading
from unittest.mock import patch

from odoo import SUPERUSER_ID, Command, api
from odoo.modules.registry import Registry
from odoo.service.model import retrying
from odoo.tests import BaseCase, tagged
from odoo.tests.common import get_db_name
from odoo.tools import mute_logger
from odoo.tools.misc import dumpstacks

from ..models.bookconnect_booking import SlotTaken
from .test_booking import give_hours, weekly_hours


@tagged("post_install", "-at_install", "bookconnect")
class TestBookingRace(BaseCase):
    """Two clients book the same slot at the same moment, in transactions that really commit:
    exactly one gets it, the other is told it is gone."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.registry = Registry(get_db_name())

    def _setup(self):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {"tracking_disable": True})
            therapist = env["res.users"].create(
                {
                    "name": "Race Booking Therapist",
                    "login": f"race_booking_{id(self)}",
                    "tz": "UTC",
                    "bookconnect_bookable": True,
                    "groups_id": [Command.set([env.ref("bookconnect_therapy.group_therapist").id])],
                }
            )
            give_hours(
                env,
                therapist,
                weekly_hours(env, "Race hours", "UTC", [(d, 0, 24) for d in range(7)]),
                "UTC",
            )
            therapist.bookconnect_policy_id = env["bookconnect.billing.policy"].create(
                {"name": "Race booking", "mode": "session", "rate": 50.0}
            )
            clients = env["res.partner"].create(
                [{"name": f"Racer {n}", "email": f"racer{n}@example.com"} for n in (1, 2)]
            )
            start = env["bookconnect.booking"]._free_slots(therapist)[0][0]
            return therapist.id, clients.ids, start

    def _cleanup(self, therapist_id):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            env["bookconnect.therapy.session"].search(
                [("therapist_id", "=", therapist_id)]
            ).unlink()
            env["res.users"].browse(therapist_id).write(
                {"bookconnect_bookable": False, "active": False}
            )

    def _book_in_thread(self, therapist_id, partner_id, start, barrier, outcomes):
        try:
            with self.registry.cursor() as cr:
                # The registry is already loaded: hand it over instead of looking it up, which
                # would wait on the lock the test runner holds while tests run.
                cr.transaction = api.Transaction(self.registry)
                env = api.Environment(cr, SUPERUSER_ID, {})
                # Both transactions read before either books: their snapshots predate the race.
                env["bookconnect.booking"]._free_slots(env["res.users"].browse(therapist_id))
                barrier.wait(timeout=30)

                def book():
                    return (
                        env["bookconnect.booking"]
                        ._book(
                            env["res.users"].browse(therapist_id),
                            env["res.partner"].browse(partner_id),
                            start,
                        )
                        .id
                    )

                # What Odoo does around every request: retry on serialisation failures.
                outcomes[partner_id] = retrying(book, env)
        except Exception as exc:  # the loser's answer
            outcomes[partner_id] = exc

    @mute_logger("odoo.sql_db", "odoo.service.model")
    def test_two_clients_racing_for_one_slot(self):
        therapist_id, partner_ids, start = self._setup()
        self.addCleanup(self._cleanup, therapist_id)
        barrier = threading.Barrier(2)
        outcomes = {}
        threads = [
            threading.Thread(
                target=self._book_in_thread,
                args=(therapist_id, partner_id, start, barrier, outcomes),
            )
            for partner_id in partner_ids
        ]
        # retrying() resets the transaction by looking the registry up again, which would wait
        # on the lock the test runner holds: the registry is loaded, so reset only the caches.
        with patch.object(api.Transaction, "reset", api.Transaction.clear):
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=60)
        if any(thread.is_alive() for thread in threads):
            dumpstacks()
            self.fail(f"a booking is still waiting after a minute: {outcomes}")
        winners = [p for p, outcome in outcomes.items() if isinstance(outcome, int)]
        losers = [p for p, outcome in outcomes.items() if isinstance(outcome, SlotTaken)]
        self.assertEqual((len(winners), len(losers)), (1, 1), f"outcomes: {outcomes}")
        self.assertIn("no longer available", str(outcomes[losers[0]]))
        with self.registry.cursor() as cr:
            cr.execute(
                "SELECT partner_id, start FROM bookconnect_therapy_session"
                " WHERE therapist_id = %s AND state NOT IN ('cancelled', 'late_cancelled')",
                [therapist_id],
            )
            self.assertEqual(cr.fetchall(), [(winners[0], start)])
