import json
import time
from datetime import timedelta
from unittest.mock import patch

from odoo import fields
from odoo.exceptions import ValidationError
from odoo.tests import HttpCase, tagged

from ..controllers.call_events import SIGNATURE_HEADER, compute_signature
from ..models.bookconnect_metered_call import BookconnectMeteredCall
from .common import SessionCase

SECRET = "s3cret-for-tests"


@tagged("post_install", "-at_install", "bookconnect")
class TestCallEventsEndpoint(SessionCase, HttpCase):
    def setUp(self):
        super().setUp()
        self.therapy = self.book(start=self.now_minute(-5))

    def now_minute(self, minutes=0):
        now = self.env.cr.now().replace(second=0, microsecond=0)
        return now + timedelta(minutes=minutes)

    def post(self, body, token=None, secret=SECRET, timestamp=None, header=None):
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        timestamp = int(time.time()) if timestamp is None else timestamp
        if header is None:
            header = f"t={timestamp},v1={compute_signature(secret, timestamp, raw)}"
        headers = {"Content-Type": "application/json"}
        if header:
            headers[SIGNATURE_HEADER] = header
        return self.url_open(
            f"/bookconnect/calls/{token or self.therapy.access_token}/events",
            data=raw,
            headers=headers,
        )

    def event(self, uid, kind, participant, minutes, at=None):
        at = (at or self.now_minute(minutes)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"id": uid, "event": kind, "participant": participant, "at": at}

    def ahead(self, minutes):
        """The server's wall clock (not the test transaction's) ``minutes`` ahead."""
        return fields.Datetime.now() + timedelta(minutes=minutes)

    def test_recorded_then_duplicate(self):
        response = self.post(self.event("e1", "joined", "client", -4))
        self.assertEqual(response.status_code, 200, response.text)
        self.assertEqual(response.json(), {"status": "recorded", "id": "e1"})
        again = self.post(self.event("e1", "joined", "client", -4))
        self.assertEqual(again.status_code, 200)
        self.assertEqual(again.json()["status"], "duplicate")
        self.assertEqual(len(self.therapy.call_id.segment_ids), 1)
        self.assertEqual(self.therapy.state, "in_progress")

    def test_a_full_call_through_the_endpoint(self):
        self.therapy.write({"start": self.now_minute(-40), "stop": self.now_minute(10)})
        for uid, kind, who, minute in [
            ("a", "joined", "therapist", -40),
            ("b", "joined", "client", -39),
            ("c", "left", "client", -5),
            ("d", "left", "therapist", -4),
        ]:
            self.assertEqual(self.post(self.event(uid, kind, who, minute)).status_code, 200)
        self.assertEqual(self.therapy.call_id.billable_seconds, 34 * 60)

    def test_events_from_the_future_are_400_and_nothing_is_recorded(self):
        """A service whose clock runs a day ahead would start tomorrow's session today."""
        tomorrow = self.book(start=self.now_minute(24 * 60))
        cases = [
            ("a day ahead", tomorrow, self.ahead(24 * 60)),
            ("4 minutes ahead", self.therapy, self.ahead(4)),
        ]
        for label, session, at in cases:
            with self.subTest(label):
                response = self.post(
                    self.event("early", "joined", "client", None, at=at),
                    token=session.access_token,
                )
                self.assertEqual(response.status_code, 400, response.text)
                self.assertIn("has not happened yet", response.json()["error"])
                self.assertFalse(session.call_id.event_ids)
                self.assertFalse(session.call_id.segment_ids)
                self.assertEqual(session.state, "scheduled")

    def test_a_clock_slightly_ahead_is_tolerated(self):
        response = self.post(self.event("skewed", "joined", "client", None, at=self.ahead(1)))
        self.assertEqual(response.status_code, 200, response.text)
        self.assertEqual(self.therapy.call_id.event_ids.mapped("event_uid"), ["skewed"])

    def test_the_metered_call_refuses_future_events_whoever_records_them(self):
        with self.assertRaisesRegex(ValidationError, "has not happened yet"):
            self.therapy.call_id._record_external_event("early", "joined", "client", self.ahead(60))
        self.assertFalse(self.therapy.call_id.event_ids)

    def test_an_event_replayed_after_a_serialization_failure_is_recorded(self):
        """Two events of one call at once: PostgreSQL refuses the second writer and Odoo runs
        its request again. The second run must read the same signed body, not an empty one."""
        record = BookconnectMeteredCall._record_external_event
        runs = []

        def concurrent_update_first(call, *args, **kwargs):
            runs.append(args[0])
            if len(runs) == 1:
                call.env.cr.execute(
                    "DO $$ BEGIN RAISE EXCEPTION 'concurrent update'"
                    " USING ERRCODE = 'serialization_failure'; END $$",
                    log_exceptions=False,
                )
            return record(call, *args, **kwargs)

        with patch.object(
            BookconnectMeteredCall, "_record_external_event", concurrent_update_first
        ):
            response = self.post(self.event("e1", "joined", "client", -4))
        self.assertEqual(runs, ["e1", "e1"])
        self.assertEqual(response.status_code, 200, response.text)
        self.assertEqual(response.json()["status"], "recorded")
        self.assertEqual(self.therapy.call_id.event_ids.mapped("event_uid"), ["e1"])

    def test_wrong_secret_old_future_or_missing_signatures_are_401(self):
        body = self.event("e2", "joined", "client", 0)
        now = int(time.time())
        cases = {
            "wrong secret": {"secret": "not-the-secret"},
            "too old": {"timestamp": now - 600},
            "from the future": {"timestamp": now + 600},
            "missing": {"header": ""},
            "malformed": {"header": "v1=abc"},
            "garbage": {"header": "t=abc,v1=zz"},
        }
        for label, kwargs in cases.items():
            with self.subTest(label):
                response = self.post(body, **kwargs)
                self.assertEqual(response.status_code, 401, response.text)
        self.assertFalse(self.therapy.call_id.event_ids)

    def test_signed_body_must_be_the_body_received(self):
        raw = json.dumps(self.event("e3", "joined", "client", 0)).encode()
        ts = int(time.time())
        header = f"t={ts},v1={compute_signature(SECRET, ts, raw)}"
        tampered = raw.replace(b"client", b"therapist")
        self.assertEqual(self.post(tampered, header=header).status_code, 401)

    def test_malformed_bodies_are_400(self):
        bad = [
            b"not json",
            b"[1, 2]",
            {"id": "x", "event": "joined", "participant": "client"},
            {"id": "", "event": "joined", "participant": "client", "at": "2026-11-27T10:00:00Z"},
            {"id": "x", "event": "waved", "participant": "client", "at": "2026-11-27T10:00:00Z"},
            {"id": "x", "event": "joined", "participant": "cat", "at": "2026-11-27T10:00:00Z"},
            {"id": "x", "event": "joined", "participant": "client", "at": "yesterday"},
            {"id": "x", "event": "joined", "participant": "client", "at": "2026-11-27T10:00:00"},
            {
                "id": "x",
                "event": "joined",
                "participant": "client",
                "at": "2026-11-27T10:00:00+02:00",
            },
            {"id": 5, "event": "joined", "participant": "client", "at": "2026-11-27T10:00:00Z"},
            {"id": "x", "event": "joined", "participant": "client", "at": "2020-01-01T10:00:00Z"},
            {
                "id": "x",
                "event": "joined",
                "participant": "client",
                "at": "2026-11-27T10:00:00Z",
                "x": 1,
            },
        ]
        for body in bad:
            with self.subTest(body=body):
                response = self.post(body)
                self.assertEqual(response.status_code, 400, response.text)
                self.assertIn("error", response.json())
        self.assertFalse(self.therapy.call_id.event_ids)

    def test_huge_body_is_refused(self):
        body = {
            "id": "x" * 10000,
            "event": "joined",
            "participant": "client",
            "at": "2026-11-27T10:00:00Z",
        }
        self.assertEqual(self.post(body).status_code, 413)

    def test_unknown_token_is_404(self):
        self.assertEqual(
            self.post(self.event("e4", "joined", "client", 0), token="0" * 32).status_code, 404
        )
        self.assertEqual(
            self.post(self.event("e4", "joined", "client", 0), token="nope").status_code, 404
        )

    def test_invoiced_session_is_409(self):
        self.post(self.event("a", "joined", "therapist", -5))
        self.post(self.event("b", "joined", "client", -5))
        self.therapy.action_end_session()
        self.assertEqual(self.therapy.state, "invoiced")
        response = self.post(self.event("c", "left", "client", 0))
        self.assertEqual(response.status_code, 409)

    def test_no_secret_refuses_everything(self):
        self.company.sudo().bookconnect_call_secret = False
        response = self.post(self.event("e5", "joined", "client", 0), secret="")
        self.assertEqual(response.status_code, 401)
        self.assertIn("no call-events secret", response.json()["error"])


@tagged("post_install", "-at_install", "bookconnect")
class TestVideoCallAccess(SessionCase, HttpCase):
    def setUp(self):
        super().setUp()
        self.client_user.password = "client-pass-1"
        self.client_b_user.password = "client-b-pass-1"
        self.therapy = self.book()
        self.link = f"/calendar/join_videocall/{self.therapy.calendar_event_id.access_token}"

    def test_anonymous_visitors_are_sent_to_log_in(self):
        response = self.url_open(self.link, allow_redirects=False)
        self.assertEqual(response.status_code, 303)
        self.assertIn("/web/login", response.headers["Location"])

    def test_the_client_is_let_in_and_others_are_not(self):
        self.authenticate(self.client_user.login, "client-pass-1")
        response = self.url_open(self.link, allow_redirects=False)
        self.assertEqual(response.status_code, 303)
        channel = self.therapy.calendar_event_id.videocall_channel_id
        self.assertTrue(channel)
        self.assertIn(f"/discuss/channel/{channel.id}", response.headers["Location"])
        self.assertEqual(
            channel.channel_member_ids.partner_id, self.therapy._participant_partners()
        )
        self.authenticate(self.client_b_user.login, "client-b-pass-1")
        self.assertEqual(self.url_open(self.link, allow_redirects=False).status_code, 403)
        invitation = f"/chat/{channel.id}/{channel.uuid}"
        self.assertEqual(self.url_open(invitation, allow_redirects=False).status_code, 404)
