import json
from datetime import timedelta

from odoo.tests import HttpCase, tagged

from odoo.addons.mail.tools.discuss import Store

from .common import SessionCase


@tagged("post_install", "-at_install", "bookconnect")
class TestDiscussInvitations(HttpCase, SessionCase):
    """A therapy session's call refuses anyone but its therapist and its client: Discuss must
    not offer to invite anyone there, and still does in every other conversation."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for user in (cls.therapist, cls.client_user):
            user.password = user.login
        # A chat session: its channel opens on the conversation, not on a call's welcome page.
        cls.therapy = cls.env["bookconnect.therapy.session"].create(
            {
                "therapist_id": cls.therapist.id,
                "partner_id": cls.client.id,
                "channel": "chat",
                "start": cls.T0,
                "stop": cls.T0 + timedelta(minutes=50),
            }
        )
        cls.therapy_channel = cls.env["discuss.channel"]._bookconnect_session_chat(cls.therapy)
        cls.group_chat = (
            cls.env["discuss.channel"]
            .with_user(cls.therapist)
            .create_group(
                (cls.therapist.partner_id | cls.therapist_b.partner_id).ids,
                name="Tour group chat",
            )
        )

    def store_data(self, channel, user):
        data = Store(channel.with_user(user)).get_result()
        [values] = [v for v in data["discuss.channel"] if v["id"] == channel.id]
        return values

    def test_the_channels_data_say_whether_invitations_are_closed(self):
        for user in (self.therapist, self.client_user):
            with self.subTest(user=user.name):
                self.assertIs(
                    self.store_data(self.therapy_channel, user)["bookconnect_invitations_closed"],
                    True,
                )
        self.assertNotIn(
            "bookconnect_invitations_closed", self.store_data(self.group_chat, self.therapist)
        )

    def test_the_participants_learn_of_a_new_call_with_invitations_closed(self):
        """Discuss is told of a new channel as it is created (on the bus): already linked to
        its session then."""
        session = self.env["bookconnect.therapy.session"].create(
            {
                "therapist_id": self.therapist.id,
                "partner_id": self.client.id,
                "start": self.T0 + timedelta(days=1),
                "stop": self.T0 + timedelta(days=1, minutes=50),
            }
        )
        before = self.env["bus.bus"].sudo().search([], order="id desc", limit=1).id or 0
        channel = self.env["discuss.channel"]._bookconnect_session_chat(session)
        self.assertEqual(channel.bookconnect_session_id, session)
        self.env.cr.precommit.run()  # the bus's notices are written on commit
        notices = self.env["bus.bus"].sudo().search([("id", ">", before)])
        told = [
            values
            for notice in notices
            for values in json.loads(notice.message)["payload"].get("discuss.channel", [])
            if values["id"] == channel.id
        ]
        self.assertTrue(told, notices.mapped("message"))
        self.assertTrue(all(values.get("bookconnect_invitations_closed") for values in told))

    def test_tour_the_therapist_is_offered_no_invitation_in_a_therapy_call(self):
        self.start_tour(
            f"/odoo/discuss?active_id=discuss.channel_{self.therapy_channel.id}",
            "bookconnect_discuss_therapist_no_invite",
            login=self.therapist.login,
        )

    def test_tour_the_client_is_offered_no_invitation_in_a_therapy_call(self):
        self.start_tour(
            f"/discuss/channel/{self.therapy_channel.id}",
            "bookconnect_discuss_client_no_invite",
            login=self.client_user.login,
        )
