from datetime import timedelta

from freezegun import freeze_time

from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import tagged
from odoo.tools import mute_logger

from .common import SessionCase


@tagged("post_install", "-at_install", "bookconnect")
class TestExternalMetering(SessionCase):
    def test_client_reconnects_twice(self):
        session = self.book()
        for role, kind, minute in [
            ("therapist", "joined", 0),
            ("client", "joined", 2),
            ("client", "left", 10),
            ("client", "joined", 11),
            ("client", "left", 30),
            ("client", "joined", 32),
            ("client", "left", 52),
            ("therapist", "left", 53),
        ]:
            self.assertTrue(self.external(session, role, kind, minute))
        self.assertEqual(session.call_id.billable_seconds, (8 + 19 + 20) * 60)
        self.assertEqual(session.call_id.client_seconds, (8 + 19 + 20) * 60)
        self.assertEqual(session.call_id.therapist_seconds, 53 * 60)
        self.assertFalse(session.call_id.live)

    def test_out_of_order_duplicated_and_overlapping_events(self):
        session = self.book()
        events = [
            ("c-left-1", "left", "client", 40),
            ("t-join", "joined", "therapist", 0),
            ("c-join-1", "joined", "client", 5),
            ("c-join-1", "joined", "client", 5),  # replayed
            ("c-join-2", "joined", "client", 20),  # second device, already connected
            ("t-left", "left", "therapist", 45),
            ("c-left-1", "left", "client", 40),  # replayed
        ]
        recorded = [
            session.call_id._record_external_event(uid, kind, role, self.at(minute))
            for uid, kind, role, minute in events
        ]
        self.assertEqual(recorded, [True, True, True, False, True, True, False])
        self.assertEqual(len(session.call_id.event_ids), 5)
        self.assertEqual(session.call_id.billable_seconds, 35 * 60)
        # same answer as the events in order, once each
        other = self.book()
        for uid, kind, role, minute in sorted(set(events), key=lambda e: e[3]):
            other.call_id._record_external_event(uid, kind, role, self.at(minute))
        self.assertEqual(other.call_id.billable_seconds, session.call_id.billable_seconds)

    def test_open_segment_counts_to_last_sign_of_life(self):
        session = self.book()
        self.external(session, "therapist", "joined", 0)
        self.external(session, "client", "joined", 0)
        self.assertTrue(session.call_id.live)
        self.assertEqual(session.call_id.billable_seconds, 0)
        with freeze_time(self.at(40)):
            session.action_end_session()
        self.assertEqual(session.billable_minutes, 40)
        self.assertFalse(session.call_id.live)

    def test_manual_correction_keeps_who_and_why(self):
        session = self.book()
        self.external(session, "therapist", "joined", 0)
        self.external(session, "client", "joined", 0)
        self.external(session, "client", "left", 20)
        self.external(session, "therapist", "left", 20)
        self.env["bookconnect.session.correct"]._correct(
            session.with_user(self.therapist), 45, "Call dropped, we continued by phone"
        )
        self.assertEqual(session.corrected_by_id, self.therapist)
        message = session.message_ids[0]
        self.assertIn("45", message.body)
        self.assertIn("continued by phone", message.body)
        self.assertEqual(message.author_id, self.therapist.partner_id)
        with self.assertRaisesRegex(Exception, "Say why"):
            self.env["bookconnect.session.correct"]._correct(
                session.with_user(self.therapist), 30, "  "
            )
        with self.assertRaises(AccessError):
            self.env["bookconnect.session.correct"]._correct(
                session.with_user(self.therapist_b), 30, "not mine"
            )
        session.with_user(self.therapist).action_end_session()
        self.assertEqual(session.billable_minutes, 45)
        self.assertAlmostEqual(session.amount, 29.25)
        with self.assertRaisesRegex(UserError, "refund it"):
            self.env["bookconnect.session.correct"]._correct(
                session.with_user(self.therapist), 10, "too late"
            )

    def test_wizard_applies_a_correction(self):
        session = self.book()
        self.external(session, "client", "joined", 0)
        action = session.with_user(self.therapist).action_correct_minutes()
        wizard = (
            self.env[action["res_model"]]
            .with_user(self.therapist)
            .with_context(**action["context"])
            .create({"minutes": 33, "reason": "network outage"})
        )
        wizard.action_apply()
        self.assertEqual(session.corrected_minutes, 33)


@tagged("post_install", "-at_install", "bookconnect")
class TestDiscussMetering(SessionCase):
    def test_discuss_call_is_metered_for_the_two_participants(self):
        session = self.book()
        therapist = self.discuss_member(session, "therapist")
        client = self.discuss_member(session, "client")
        with freeze_time(self.at(0)):
            therapist._rtc_join_call()
        with freeze_time(self.at(1)):
            client._rtc_join_call()
        self.assertEqual(session.state, "in_progress")
        with freeze_time(self.at(10)):
            client._rtc_leave_call()  # reconnect 1
        with freeze_time(self.at(12)):
            client._rtc_join_call()
        with freeze_time(self.at(20)):
            client._rtc_join_call()  # rejoining replaces the connection: reconnect 2
        with freeze_time(self.at(41)):
            client._rtc_leave_call()
            therapist._rtc_leave_call()
        segments = session.call_id.segment_ids
        self.assertEqual(len(segments.filtered(lambda s: s.role == "client")), 3)
        self.assertTrue(all(segments.mapped("end")))
        self.assertEqual(session.call_id.billable_seconds, (9 + 29) * 60)

    def test_garbage_collected_session_ends_at_its_last_heartbeat(self):
        session = self.book()
        therapist = self.discuss_member(session, "therapist")
        client = self.discuss_member(session, "client")
        with freeze_time(self.at(0)):
            therapist._rtc_join_call()
            client._rtc_join_call()
        rtc = client.rtc_session_ids
        # the client's browser crashed: last heartbeat at minute 25
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE discuss_channel_rtc_session SET write_date = %s WHERE id = %s",
            (self.at(25), rtc.id),
        )
        rtc.invalidate_recordset(["write_date"])
        with freeze_time(self.at(70)):
            self.env["discuss.channel.rtc.session"]._gc_inactive_sessions()
        segment = session.call_id.segment_ids.filtered(lambda s: s.role == "client")
        self.assertEqual(segment.end, self.at(25))
        with freeze_time(self.at(70)):
            therapist._rtc_leave_call()
        self.assertEqual(session.call_id.billable_seconds, 25 * 60)

    def test_outsiders_cannot_join_or_be_metered(self):
        session = self.book()
        channel_member = self.discuss_member(session, "therapist")
        channel = channel_member.channel_id
        self.assertEqual(channel.bookconnect_session_id, session)
        outsider = self.env["res.partner"].create({"name": "Eve"})
        with self.assertRaisesRegex(AccessError, "Only the therapist and the client"):
            channel.add_members(partner_ids=outsider.ids)
        guest = self.env["mail.guest"].create({"name": "Guest"})
        with self.assertRaises(AccessError):
            channel.add_members(guest_ids=guest.ids)
        self.assertEqual(
            channel.channel_member_ids.partner_id, self.therapist.partner_id | self.client
        )

    @mute_logger("odoo.sql_db")
    def test_sweep_collects_dead_connections_and_ends_the_call(self):
        session = self.book()
        therapist = self.discuss_member(session, "therapist")
        client = self.discuss_member(session, "client")
        with freeze_time(self.at(0)):
            therapist._rtc_join_call()
            client._rtc_join_call()
        self.env.flush_all()
        self.env.cr.execute(
            "UPDATE discuss_channel_rtc_session SET write_date = %s WHERE channel_id = %s",
            (self.at(48), client.channel_id.id),
        )
        self.env["discuss.channel.rtc.session"].invalidate_model(["write_date"])
        with freeze_time(self.at(48) + timedelta(minutes=11)):
            self.env["bookconnect.therapy.session"]._cron_sweep()
        self.assertEqual(session.state, "invoiced")
        self.assertEqual(session.billable_minutes, 48)


@tagged("post_install", "-at_install", "bookconnect")
class TestOneWayIntoACall(SessionCase):
    """Every way into a call goes through the metered call's checks: the Discuss call, the
    chat, the external service and its replay by scripts and demo data."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.prepaid = cls._make_policy(
            mode="minute", rate=1.0, prepayment="balance", minimum_balance=5.0
        )

    def test_a_client_without_the_minimum_cannot_join_the_discuss_call(self):
        session = self.book(policy_id=self.prepaid.id)
        therapist = self.discuss_member(session, "therapist")
        client = self.discuss_member(session, "client")
        with freeze_time(self.at(0)):
            with self.assertRaisesRegex(UserError, "top up first"):
                client._rtc_join_call()
            self.assertFalse(session.call_id.segment_ids)
            therapist._rtc_join_call()
        self.assertEqual(session.call_id.segment_ids.mapped("role"), ["therapist"])

    def test_a_client_without_the_minimum_cannot_open_a_chat(self):
        session = self.book(policy_id=self.prepaid.id, channel="chat")
        with self.assertRaisesRegex(UserError, "top up first"):
            session.with_user(self.therapist).action_open_chat()
        self.assertFalse(session.call_id.segment_ids)

    def test_a_replay_is_checked_like_the_endpoint(self):
        call = self.book(policy_id=self.prepaid.id).call_id
        with self.assertRaisesRegex(UserError, "top up first"):
            call._replay_external_events([("c1", "joined", "client", 0)])
        with self.assertRaisesRegex(ValidationError, "far outside"):
            call._replay_external_events([("t1", "joined", "therapist", 60 * 24)])
        self.assertFalse(call.event_ids)
        self.assertEqual(
            call._replay_external_events([("t1", "joined", "therapist", 0)]), call.session_id
        )
        self.assertEqual(call.session_id.state, "scheduled", "the session marks itself")
        call.session_id._mark_in_progress()
        self.assertEqual(call.session_id.state, "in_progress")

    def test_an_ended_session_takes_no_more_events(self):
        session = self.book()
        self.external(session, "therapist", "joined", 0)
        self.assertEqual(session.state, "in_progress")
        with freeze_time(self.at(5)):
            session.action_end_session()
        with self.assertRaisesRegex(UserError, "no more call events"):
            session.call_id._replay_external_events([("t2", "left", "therapist", 6)])

    def test_the_call_knows_its_two_participants(self):
        call = self.book().call_id
        self.assertEqual(call._role_of(self.therapist.partner_id), "therapist")
        self.assertEqual(call._role_of(self.client), "client")
        self.assertFalse(call._role_of(self.client_b))
        self.assertEqual(call._partner_of("client"), self.client)
