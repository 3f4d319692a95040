from datetime import timedelta

from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import tagged

from .common import SessionCase


@tagged("post_install", "-at_install", "bookconnect")
class TestSession(SessionCase):
    def test_booking_creates_a_private_calendar_event_with_a_video_link(self):
        session = self.book()
        event = session.calendar_event_id
        self.assertTrue(event)
        self.assertEqual(event.privacy, "private")
        self.assertEqual((event.start, event.stop), (session.start, session.stop))
        self.assertEqual(event.partner_ids, self.therapist.partner_id | self.client)
        self.assertEqual(event.user_id, self.therapist)
        self.assertEqual(event.videocall_source, "discuss")
        self.assertIn(f"/calendar/join_videocall/{event.access_token}", event.videocall_location)
        self.assertEqual(session.videocall_url, event.videocall_location)
        self.assertTrue(session.call_id)
        self.assertEqual(session.state, "scheduled")
        self.assertTrue(session.name.startswith("SES/"))
        self.assertEqual(len(session.access_token), 32)
        self.assertEqual(session.duration, 50)

    def test_policy_defaults_from_client_then_therapist_then_company(self):
        self.assertEqual(self.book().policy_id, self.policy_minute)  # company
        self.therapist.bookconnect_policy_id = self.policy_session
        self.assertEqual(self.book().policy_id, self.policy_session)  # therapist
        hourly = self.policy(mode="hour", rate=80)
        self.client.bookconnect_policy_id = hourly
        self.assertEqual(self.book().policy_id, hourly)  # client
        explicit = self.book(policy_id=self.policy_minute.id)
        self.assertEqual(explicit.policy_id, self.policy_minute)

    def test_no_policy_anywhere_is_a_clear_error(self):
        self.company.bookconnect_policy_id = False
        with self.assertRaisesRegex(UserError, "No billing policy"):
            self.book()

    def test_bad_bookings_are_refused(self):
        with self.assertRaisesRegex(ValidationError, "not a therapist"):
            self.book(therapist=self.env.ref("base.user_demo"))
        with self.assertRaisesRegex(ValidationError, "must end after it starts"):
            self.book(minutes=-10)
        with self.assertRaisesRegex(ValidationError, "longer than 12 hours"):
            self.book(minutes=13 * 60)

    def test_moving_either_side_keeps_the_other_in_step(self):
        session = self.book()
        later = session.start + timedelta(days=1)
        session.calendar_event_id.write({"start": later, "stop": later + timedelta(minutes=50)})
        self.assertEqual(session.start, later)
        self.assertEqual(session.duration, 50)
        earlier = later - timedelta(hours=2)
        session.write({"start": earlier, "stop": earlier + timedelta(minutes=30)})
        self.assertEqual(session.calendar_event_id.start, earlier)
        self.assertEqual(session.calendar_event_id.stop, earlier + timedelta(minutes=30))

    def test_cancelling_either_side_cancels_the_other(self):
        session = self.book()
        session.calendar_event_id.unlink()
        self.assertEqual(session.state, "cancelled")
        other = self.book()
        other.with_user(self.therapist).action_cancel()
        self.assertEqual(other.state, "cancelled")
        self.assertFalse(other.calendar_event_id.active)

    def test_a_started_session_cannot_be_moved(self):
        session = self.book()
        self.external(session, "client", "joined", 0)
        self.assertEqual(session.state, "in_progress")
        with self.assertRaisesRegex(UserError, "cannot be moved"):
            session.calendar_event_id.write({"start": self.at(60), "stop": self.at(120)})

    def test_therapists_see_their_own_sessions_only(self):
        mine = self.book()
        theirs = self.book(therapist=self.therapist_b)
        Session = self.env["bookconnect.therapy.session"]
        self.assertEqual(Session.with_user(self.therapist).search([]), mine)
        self.assertEqual(Session.with_user(self.therapist_b).search([]), theirs)
        mine_or_theirs = [("id", "in", (mine | theirs).ids)]
        self.assertEqual(Session.with_user(self.manager).search(mine_or_theirs), mine | theirs)
        with self.assertRaises(AccessError):
            theirs.with_user(self.therapist).read(["partner_id"])
        with self.assertRaises(AccessError):
            theirs.call_id.with_user(self.therapist).read(["billable_seconds"])
        with self.assertRaises(AccessError):
            theirs.with_user(self.therapist).action_end_session()
        self.assertEqual(Session.with_user(self.client_user).search(mine_or_theirs), mine | theirs)
        self.assertFalse(Session.with_user(self.client_b_user).search([]))

    def test_multi_company_isolation(self):
        other_company = self.env["res.company"].create({"name": "Other practice"})
        session = self.book()
        self.manager.write({"company_ids": [(4, other_company.id)], "company_id": other_company.id})
        as_manager = (
            self.env["bookconnect.therapy.session"]
            .with_user(self.manager)
            .with_context(allowed_company_ids=[other_company.id])
        )
        self.assertFalse(as_manager.search([("id", "=", session.id)]))
