import threading

import psycopg2

from odoo import SUPERUSER_ID, Command, api
from odoo.modules.registry import Registry
from odoo.tests import BaseCase, tagged
from odoo.tests.common import get_db_name
from odoo.tools import mute_logger


@tagged("post_install", "-at_install", "bookconnect")
class TestEndingRace(BaseCase):
    """Two workers end the same sessions at the same moment, in separate transactions that
    really commit: one invoice per session, whatever the interleaving."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.registry = Registry(get_db_name())

    def _setup_sessions(self, count):
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {"tracking_disable": True})
            therapist = env["res.users"].create(
                {
                    "name": "Race Therapist",
                    "login": f"race_therapist_{id(self)}",
                    "groups_id": [Command.set([env.ref("bookconnect_therapy.group_therapist").id])],
                }
            )
            client = env["res.partner"].create({"name": "Race Client", "email": "race@example.com"})
            policy = env["bookconnect.billing.policy"].create(
                {"name": "Race", "mode": "minute", "rate": 1.0}
            )
            sessions = env["bookconnect.therapy.session"].create(
                [
                    {
                        "therapist_id": therapist.id,
                        "partner_id": client.id,
                        "policy_id": policy.id,
                        "start": "2026-11-27 10:00:00",
                        "stop": "2026-11-27 10:50:00",
                    }
                    for _ in range(count)
                ]
            )
            for session in sessions:
                for uid, kind, role, at in [
                    ("t1", "joined", "therapist", "2026-11-27 10:00:00"),
                    ("c1", "joined", "client", "2026-11-27 10:01:00"),
                    ("c2", "left", "client", "2026-11-27 10:31:00"),
                    ("t2", "left", "therapist", "2026-11-27 10:31:00"),
                ]:
                    session.call_id._record_external_event(uid, kind, role, at)
            return sessions.ids

    def _end_in_thread(self, ids, barrier, outcomes):
        try:
            with self.registry.cursor() as cr:
                # The registry is already loaded: hand it over instead of looking it up, which
                # would wait on the lock the test runner holds while tests run.
                cr.transaction = api.Transaction(self.registry)
                env = api.Environment(cr, SUPERUSER_ID, {})
                barrier.wait(timeout=30)
                ended = env["bookconnect.therapy.session"].browse(ids)._end_sessions()
                outcomes.append(len(ended))
        except Exception as exc:  # a worker that loses a race may fail: count it
            outcomes.append(exc)

    @mute_logger("odoo.sql_db")
    def test_two_workers_racing_make_one_invoice_each(self):
        ids = self._setup_sessions(6)
        barrier = threading.Barrier(2)
        outcomes = []
        threads = [
            threading.Thread(target=self._end_in_thread, args=(ids, barrier, outcomes))
            for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        with self.registry.cursor() as cr:
            cr.execute(
                "SELECT bookconnect_session_id, count(*) FROM account_move"
                " WHERE bookconnect_session_id IN %s AND move_type = 'out_invoice'"
                " GROUP BY bookconnect_session_id",
                [tuple(ids)],
            )
            counts = dict(cr.fetchall())
            cr.execute(
                "SELECT DISTINCT state FROM bookconnect_therapy_session WHERE id IN %s",
                [tuple(ids)],
            )
            states = {row[0] for row in cr.fetchall()}
        self.assertEqual(counts, dict.fromkeys(ids, 1), f"outcomes: {outcomes}")
        self.assertEqual(states, {"invoiced"})
        ended = sum(o for o in outcomes if isinstance(o, int))
        self.assertEqual(ended, len(ids), f"every session ended exactly once: {outcomes}")


@tagged("post_install", "-at_install", "bookconnect")
class TestCallEventRace(BaseCase):
    """Two events of one call recorded at once by two workers: the second one waits for the
    first and is then run again by Odoo (a serialization failure), quietly."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.registry = Registry(get_db_name())

    def cursor(self):
        cr = self.registry.cursor()
        # The registry is already loaded: hand it over (see TestEndingRace).
        cr.transaction = api.Transaction(self.registry)
        return cr

    def test_an_event_on_a_call_changed_meanwhile_is_refused_quietly_for_a_retry(self):
        with self.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {"tracking_disable": True})
            therapist = env["res.users"].create(
                {
                    "name": "Event Race Therapist",
                    "login": f"event_race_{id(self)}",
                    "groups_id": [Command.set([env.ref("bookconnect_therapy.group_therapist").id])],
                }
            )
            client = env["res.partner"].create({"name": "Event Race Client"})
            policy = env["bookconnect.billing.policy"].create(
                {"name": "Event race", "mode": "minute", "rate": 1.0}
            )
            session = env["bookconnect.therapy.session"].create(
                {
                    "therapist_id": therapist.id,
                    "partner_id": client.id,
                    "policy_id": policy.id,
                    "start": "2026-11-27 10:00:00",
                    "stop": "2026-11-27 10:50:00",
                }
            )
            session.call_id._record_external_event(
                "t1", "joined", "therapist", "2026-11-27 10:00:00"
            )
            call_id = session.call_id.id
        with self.cursor() as late_cr:
            late = api.Environment(late_cr, SUPERUSER_ID, {})["bookconnect.metered.call"]
            # This transaction's snapshot starts with its first query.
            self.assertEqual(late.browse(call_id).billable_seconds, 0)
            with self.cursor() as first_cr:
                # An event that changes no figure of the call: a "left" with nothing open.
                first = api.Environment(first_cr, SUPERUSER_ID, {})["bookconnect.metered.call"]
                first.browse(call_id)._record_external_event(
                    "c0", "left", "client", "2026-11-27 10:05:00"
                )
            with (
                self.assertNoLogs("odoo.sql_db", "ERROR"),
                self.assertRaises(psycopg2.errors.SerializationFailure),
            ):
                late.browse(call_id)._record_external_event(
                    "c1", "joined", "client", "2026-11-27 10:01:00"
                )
            late_cr.rollback()
        with self.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            events = env["bookconnect.call.event"].search([("call_id", "=", call_id)])
            self.assertEqual(sorted(events.mapped("event_uid")), ["c0", "t1"])
