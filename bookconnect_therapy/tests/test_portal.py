import re
from datetime import timedelta
from unittest.mock import patch
from urllib.parse import quote, urlparse

from lxml import html

from odoo import fields, http
from odoo.tests import HttpCase, tagged
from odoo.tests.common import JsonRpcException

from odoo.addons.portal.controllers.portal import CustomerPortal

from .common import SessionCase

STEP = re.compile(
    r"^(?P<tag>[a-z0-9]*)(?P<classes>(?:\.[\w-]+)*)(?:\[(?P<attr>[\w-]+)(?:=(?P<value>[\w-]+))?\])?$"
)


def select(tree, selector):
    """Elements matching a simple CSS selector (``tag.class[attr=value] descendant, ...``)."""
    paths = []
    for alternative in selector.split(","):
        path = ""
        for step in alternative.split():
            match = STEP.match(step)
            assert match, f"unsupported selector step {step!r}"
            conditions = [
                f"contains(concat(' ', normalize-space(@class), ' '), ' {name} ')"
                for name in match["classes"].split(".")[1:]
            ]
            if match["attr"]:
                attr = match["attr"]
                value = match["value"]
                conditions.append(f"@{attr}='{value}'" if value else f"@{attr}")
            path += "//" + (match["tag"] or "*") + "".join(f"[{c}]" for c in conditions)
        paths.append(path)
    return tree.xpath(" | ".join(paths))


class PortalCase(HttpCase, SessionCase):
    """Portal clients who can sign in (login = password), and sessions around the real now."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        for user in (cls.client_user, cls.client_b_user):
            user.write({"password": user.login, "tz": "Europe/London"})
        cls.company.bookconnect_join_before_minutes = 10
        cls.env["ir.config_parameter"].sudo().set_param(
            "account_payment.enable_portal_payment", "True"
        )
        cls.policy_late_fee = cls.env["bookconnect.billing.policy"].create(
            {
                "name": "Session with a late fee",
                "mode": "session",
                "rate": 90,
                "currency_id": cls.currency.id,
                "collection": "portal",
                "free_cancel_hours": 24,
                "late_fee_kind": "fixed",
                "late_fee_fixed": 20,
            }
        )

    def now(self):
        return fields.Datetime.now().replace(microsecond=0)

    def book_in(self, minutes, **values):
        """Book a 50-minute session starting ``minutes`` from now (negative: in the past)."""
        return self.book(start=self.now() + timedelta(minutes=minutes), **values)

    def invoiced_session(self, client=None, minutes_together=35):
        """A session held two hours ago with ``minutes_together`` of call, ended and invoiced."""
        session = self.book_in(-120, client=client, policy_id=self.policy_late_fee.id)
        for uid, kind, role, minute in (
            ("t1", "joined", "therapist", 0),
            ("c1", "joined", "client", 0),
            ("c2", "left", "client", minutes_together),
            ("t2", "left", "therapist", minutes_together),
        ):
            session.call_id._record_external_event(
                uid, kind, role, session.start + timedelta(minutes=minute)
            )
        session._end_sessions()
        self.assertEqual(session.state, "invoiced")
        return session

    def get(self, url):
        return self.url_open(url, allow_redirects=False)

    def post(self, url, **data):
        data.setdefault("csrf_token", http.Request.csrf_token(self))
        return self.url_open(url, data=data, allow_redirects=False)

    def page(self, url):
        response = self.url_open(url)
        self.assertEqual(response.status_code, 200, url)
        return html.fromstring(response.content)

    def assertRedirects(self, response, path):
        self.assertIn(response.status_code, (301, 302, 303), response.text[:300])
        self.assertEqual(urlparse(response.headers["Location"]).path, path)


@tagged("post_install", "-at_install", "bookconnect")
class TestPortalSessions(PortalCase):
    def test_home_counts_the_clients_own_sessions(self):
        self.book_in(60)
        self.book_in(2 * 24 * 60)
        self.book_in(60, client=self.client_b)
        self.authenticate("bc_cc", "bc_cc")
        counters = self.make_jsonrpc_request(
            "/my/counters", {"counters": ["bookconnect_session_count"]}
        )
        self.assertEqual(counters["bookconnect_session_count"], 2)
        home = self.page("/my/home")
        self.assertTrue(home.xpath("//a[@href='/my/sessions']"))
        self.assertTrue(home.xpath("//a[@href='/book']"))

    def test_list_shows_date_therapist_state_minutes_amount_invoice(self):
        upcoming = self.book_in(3 * 24 * 60)
        held = self.invoiced_session()
        other = self.book_in(60, client=self.client_b)
        self.authenticate("bc_cc", "bc_cc")
        page = self.page("/my/sessions")
        rows = select(page, "tr.o_bookconnect_session_row")
        self.assertEqual([int(row.get("data-session-id")) for row in rows], [upcoming.id, held.id])
        text = page.text_content()
        self.assertNotIn(other.name, text)
        upcoming_row, held_row = (row.text_content() for row in rows)
        self.assertIn("Alex Therapist", upcoming_row)
        self.assertIn("Scheduled", upcoming_row)
        self.assertIn("Invoiced", held_row)
        self.assertIn("35 min", held_row)
        self.assertIn("90.00", held_row)
        self.assertIn(held.invoice_id.name, held_row)
        self.assertIn("Not Paid", held_row)
        self.assertIn("Times are shown in Europe/London", text)
        # The next session is highlighted.
        card = select(page, ".o_bookconnect_next_session")[0]
        self.assertTrue(card.xpath(f".//a[@href='{upcoming.access_url}']"))
        self.assertIn("Alex Therapist", card.text_content())

    def test_list_filters_sorts_and_pages(self):
        past = self.invoiced_session()
        soon = self.book_in(24 * 60)
        later = self.book_in(5 * 24 * 60)
        cancelled = self.book_in(6 * 24 * 60)
        cancelled.action_cancel()
        self.authenticate("bc_cc", "bc_cc")

        def ids(url):
            rows = select(self.page(url), "tr.o_bookconnect_session_row")
            return [int(row.get("data-session-id")) for row in rows]

        self.assertEqual(ids("/my/sessions"), [cancelled.id, later.id, soon.id, past.id])
        self.assertEqual(ids("/my/sessions?filterby=upcoming"), [soon.id, later.id])
        self.assertEqual(ids("/my/sessions?filterby=past"), [cancelled.id, past.id])
        # Status order: cancelled < invoiced < scheduled (alphabetical keys), newest first within.
        self.assertEqual(
            ids("/my/sessions?sortby=state"), [cancelled.id, past.id, later.id, soon.id]
        )
        self.assertEqual(ids("/my/sessions?sortby=nonsense&filterby=nonsense")[0], cancelled.id)
        with patch.object(CustomerPortal, "_items_per_page", 3):
            self.assertEqual(ids("/my/sessions"), [cancelled.id, later.id, soon.id])
            self.assertEqual(ids("/my/sessions/page/2"), [past.id])

    def test_join_button_opens_before_the_start_and_closes_at_the_end(self):
        soon = self.book_in(5)
        self.authenticate("bc_cc", "bc_cc")
        page = self.page(soon.access_url)
        join = select(page, ".o_bookconnect_actions a.o_bookconnect_join")
        self.assertEqual(len(join), 1)
        self.assertEqual(join[0].get("href"), soon.videocall_url)
        self.assertIn("/calendar/join_videocall/", soon.videocall_url)

        later = self.book_in(3 * 60)
        page = self.page(later.access_url)
        self.assertFalse(select(page, "a.o_bookconnect_join"))
        self.assertTrue(select(page, "button.o_bookconnect_join_disabled[disabled]"))
        self.assertIn("Opens at", page.text_content())

        ended = self.book_in(-120)
        page = self.page(ended.access_url)
        self.assertFalse(select(page, ".o_bookconnect_join, .o_bookconnect_join_disabled"))

    def test_following_the_join_link_takes_the_client_into_the_call(self):
        session = self.book_in(5)
        path = urlparse(session.videocall_url).path
        self.authenticate("bc_cc", "bc_cc")
        response = self.get(path)
        channel = session.calendar_event_id.sudo().videocall_channel_id
        self.assertTrue(channel)
        self.assertRedirects(response, f"/discuss/channel/{channel.id}")
        self.assertEqual(
            channel.channel_member_ids.partner_id, self.client | self.therapist.partner_id
        )
        # Another client holding the link is refused.
        self.authenticate("bc_dc", "bc_dc")
        self.assertEqual(self.get(path).status_code, 403)

    def test_cancel_in_time_is_free(self):
        session = self.book_in(3 * 24 * 60, policy_id=self.policy_late_fee.id)
        self.authenticate("bc_cc", "bc_cc")
        page = self.page(session.access_url)
        self.assertTrue(page.xpath(f"//a[@href='/my/sessions/{session.id}/cancel']"))
        page = self.page(f"/my/sessions/{session.id}/cancel")
        consequence = select(page, ".o_bookconnect_cancel_consequence")[0].text_content()
        self.assertIn("Cancelling now is free", consequence)
        self.assertEqual(session.state, "scheduled", "showing the consequence changes nothing")
        response = self.post(f"/my/sessions/{session.id}/cancel", confirm_late="0")
        self.assertRedirects(response, session.access_url)
        self.assertEqual(session.state, "cancelled")
        self.assertEqual(session.cancelled_by, "client")

    def test_cancel_late_shows_the_fee_first(self):
        session = self.book_in(2 * 60, policy_id=self.policy_late_fee.id)
        self.authenticate("bc_cc", "bc_cc")
        page = self.page(f"/my/sessions/{session.id}/cancel")
        consequence = select(page, ".o_bookconnect_cancel_consequence")[0].text_content()
        self.assertIn("Cancelling now costs", consequence)
        self.assertIn("20.00", consequence)
        # A confirmation given for a free cancellation does not cancel late: shown again.
        response = self.post(f"/my/sessions/{session.id}/cancel", confirm_late="0")
        self.assertEqual(response.status_code, 200)
        self.assertIn("changed while you were deciding", response.text)
        self.assertEqual(session.state, "scheduled")
        response = self.post(f"/my/sessions/{session.id}/cancel", confirm_late="1")
        self.assertRedirects(response, session.access_url)
        self.assertEqual(session.state, "late_cancelled")
        page = self.page(session.access_url)
        self.assertFalse(select(page, "a.o_bookconnect_cancel"))
        self.assertIn("Cancelled late", page.text_content())

    def test_cancel_needs_a_csrf_token(self):
        session = self.book_in(3 * 24 * 60)
        self.authenticate("bc_cc", "bc_cc")
        response = self.url_open(
            f"/my/sessions/{session.id}/cancel",
            data={"confirm_late": "0"},
            allow_redirects=False,
        )
        self.assertEqual(response.status_code, 400)
        self.assertEqual(session.state, "scheduled")

    def test_invoice_link_and_pay_button(self):
        session = self.invoiced_session()
        invoice = session.invoice_id
        self.authenticate("bc_cc", "bc_cc")
        page = self.page(session.access_url)
        pay = select(page, "a.o_bookconnect_pay")
        self.assertEqual(len(pay), 1)
        self.assertEqual(urlparse(pay[0].get("href")).path, f"/my/invoices/{invoice.id}")
        invoice_page = self.page(pay[0].get("href"))
        self.assertTrue(invoice_page.xpath("//a[@data-bs-target='#pay_with']"))
        self.assertIn("35 min", select(page, ".o_bookconnect_measured")[0].text_content())

    def test_booking_requirements_are_asked_for(self):
        card_policy = self.policy(mode="session", rate=90, require_card=True)
        session = self.book_in(3 * 24 * 60, policy_id=card_policy.id)
        self.authenticate("bc_cc", "bc_cc")
        page = self.page(f"{session.access_url}?booked=1")
        self.assertIn("One more step", select(page, ".o_bookconnect_booked")[0].text_content())
        card = select(page, ".o_bookconnect_requirement_card a")
        self.assertEqual(card[0].get("href"), f"/my/sessions/{session.id}/card")
        self.assertRedirects(self.get(card[0].get("href")), "/my/payment_method")
        methods = self.page("/my/payment_method")
        back = select(methods, ".o_bookconnect_card_return a")
        self.assertEqual(back[0].get("href"), session.access_url)

        prepay_policy = self.policy(mode="session", rate=90, prepayment="full")
        prepaid = self.book_in(4 * 24 * 60, policy_id=prepay_policy.id)
        page = self.page(prepaid.access_url)
        prepay = select(page, ".o_bookconnect_requirement_prepay a")
        # paid up front: the booked price is invoiced at booking, paid on Odoo's invoice page
        self.assertEqual(prepaid.invoice_id.payment_state, "not_paid")
        self.assertEqual(prepay[0].get("href"), prepaid.invoice_id.get_portal_url())
        self.assertFalse(select(page, ".o_bookconnect_requirement_card"))

    def test_policy_in_plain_words_on_the_session_page(self):
        session = self.book_in(3 * 24 * 60)
        self.authenticate("bc_cc", "bc_cc")
        summary = select(self.page(session.access_url), ".o_bookconnect_policy_summary")
        self.assertEqual(summary[0].text_content(), session.policy_id._client_summary("en_US"))
        self.assertIn("a minute", summary[0].text_content())

    def test_tour_join_from_the_detail_page(self):
        self.book_in(5)
        self.start_tour("/my/sessions", "bookconnect_portal_join", login="bc_cc")

    def test_tour_cancel_late_with_the_fee_shown(self):
        session = self.book_in(2 * 60, policy_id=self.policy_late_fee.id)
        self.start_tour("/my/sessions", "bookconnect_portal_cancel_late", login="bc_cc")
        self.assertEqual(session.state, "late_cancelled")
        self.assertEqual(session.cancelled_by, "client")

    def test_tour_open_the_invoice_pay_page(self):
        self.invoiced_session()
        self.start_tour("/my/sessions", "bookconnect_portal_pay", login="bc_cc")


@tagged("post_install", "-at_install", "bookconnect")
class TestPortalAccess(PortalCase):
    """A client never reads another client's session or invoice: not by URL, id or token."""

    def setUp(self):
        super().setUp()
        self.own = self.book_in(3 * 24 * 60)
        self.theirs = self.invoiced_session(client=self.client_b)
        self.their_invoice = self.theirs.invoice_id
        self.authenticate("bc_cc", "bc_cc")

    def assertNotShown(self, response):
        self.assertNotEqual(response.status_code, 200)
        self.assertNotIn(self.theirs.name, response.text)
        self.assertNotIn("Dana Client", response.text)

    def test_a_path_with_a_nul_character_is_not_found(self):
        """PostgreSQL refuses NUL in text: looking such a path up as an attachment would be a
        server error for any visitor who types one."""
        for path in ("/my/sessions/x%00/cancel", "/%00", "/bookconnect/calls/a%2F%00/events"):
            with self.subTest(path=path):
                self.assertEqual(self.url_open(path).status_code, 404)

    def assertNotFoundPage(self, response):
        """The clear answer for a session that is not the visitor's: the same page whether
        it exists or not."""
        self.assertEqual(response.status_code, 404)
        page = html.fromstring(response.content)
        self.assertIn("This session is not among yours", page.text_content())
        self.assertTrue(page.xpath("//a[@href='/my/sessions']"))

    def test_another_clients_session_by_url(self):
        response = self.get(self.theirs.access_url)
        self.assertNotShown(response)
        self.assertNotFoundPage(response)
        # A session that does not exist gets the very same page: nothing tells them apart.
        missing = self.env["bookconnect.therapy.session"].search([], order="id desc", limit=1)
        absent = self.get(f"/my/sessions/{missing.id + 1000}")
        self.assertNotFoundPage(absent)
        strip = re.compile(r'csrf_token: "[^"]*"|/my/sessions/\d+')
        self.assertEqual(strip.sub("", absent.text), strip.sub("", response.text))
        # Positive control: the client's own session is shown.
        self.assertIn(self.own.name, self.url_open(self.own.access_url).text)

    def test_another_clients_session_by_forged_or_borrowed_token(self):
        token = self.theirs.access_token
        forged = ("0" if token[0] != "0" else "1") + token[1:]
        for candidate in (forged, "0" * 32, self.own.access_token, "", "' OR 1=1 --"):
            with self.subTest(token=candidate):
                response = self.get(f"{self.theirs.access_url}?access_token={candidate}")
                self.assertNotShown(response)
                self.assertNotFoundPage(response)

    def test_token_from_an_email_opens_the_session_for_its_holder(self):
        """Positive control for the test above: the real token is what opens the page."""
        self.authenticate(None, None)
        response = self.get(f"{self.theirs.access_url}?access_token={self.theirs.access_token}")
        self.assertEqual(response.status_code, 200)
        self.assertIn(self.theirs.name, response.text)
        future = self.book_in(3 * 24 * 60, client=self.client_b)
        response = self.get(f"{future.access_url}?access_token={future.access_token}")
        self.assertIn(future.name, response.text)
        self.assertIn("Sign in to join", response.text)
        self.assertNotIn("o_bookconnect_cancel", response.text, "only the signed-in client cancels")

    def test_signed_out_visitor_is_sent_to_sign_in(self):
        self.authenticate(None, None)
        for path in (self.theirs.access_url, "/my/sessions/999999"):
            with self.subTest(path=path):
                response = self.get(path)
                self.assertRedirects(response, "/web/login")
                self.assertIn(f"redirect={quote(path, safe='')}", response.headers["Location"])
        self.assertRedirects(self.get("/my"), "/web/login")
        self.assertRedirects(self.get("/my/sessions"), "/web/login")

    def test_another_clients_session_actions(self):
        for path in (
            f"/my/sessions/{self.theirs.id}/cancel",
            f"/my/sessions/{self.theirs.id}/card",
        ):
            with self.subTest(path=path):
                self.assertEqual(self.get(path).status_code, 404)
        future = self.book_in(3 * 24 * 60, client=self.client_b)
        response = self.post(f"/my/sessions/{future.id}/cancel", confirm_late="0")
        self.assertEqual(response.status_code, 404)
        self.assertEqual(future.state, "scheduled")
        # Nor with their token: cancelling needs to be the client.
        response = self.post(
            f"/my/sessions/{future.id}/cancel?access_token={future.access_token}",
            confirm_late="0",
        )
        self.assertEqual(response.status_code, 404)
        self.assertEqual(future.state, "scheduled")

    def test_another_clients_invoice_by_url_id_and_token(self):
        invoice = self.their_invoice
        response = self.get(f"/my/invoices/{invoice.id}")
        self.assertRedirects(response, "/my")
        self.assertNotIn(invoice.name, response.text)
        forged = "0" * 32
        response = self.get(f"/my/invoices/{invoice.id}?access_token={forged}")
        self.assertRedirects(response, "/my")
        response = self.get(f"/my/invoices/{invoice.id}?report_type=pdf&access_token={forged}")
        self.assertRedirects(response, "/my")
        self.assertNotIn(invoice.name, self.url_open("/my/invoices").text)

    def test_another_clients_records_by_id_over_rpc(self):
        for model, record in (
            ("bookconnect.therapy.session", self.theirs),
            ("account.move", self.their_invoice),
        ):
            with self.subTest(model=model), self.assertRaises(JsonRpcException) as caught:
                self.make_jsonrpc_request(
                    "/web/dataset/call_kw",
                    {
                        "model": model,
                        "method": "read",
                        "args": [[record.id], ["name"]],
                        "kwargs": {},
                    },
                )
            self.assertEqual(caught.exception.args[0], "odoo.exceptions.AccessError")
        found = self.make_jsonrpc_request(
            "/web/dataset/call_kw",
            {
                "model": "bookconnect.therapy.session",
                "method": "search_read",
                "args": [[], ["name"]],
                "kwargs": {},
            },
        )
        self.assertEqual([row["name"] for row in found], [self.own.name])

    def test_lists_hold_only_the_clients_own_records(self):
        text = self.url_open("/my/sessions").text
        self.assertIn(self.own.name, text)
        self.assertNotIn(self.theirs.name, text)
        self.assertNotIn(self.their_invoice.name, text)
