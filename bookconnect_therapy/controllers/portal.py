from collections import OrderedDict

import pytz
from werkzeug.urls import url_encode

from odoo import _, fields, http
from odoo.exceptions import AccessError, MissingError, UserError
from odoo.http import request
from odoo.tools import format_amount, format_datetime

from odoo.addons.payment.controllers.portal import PaymentPortal
from odoo.addons.portal.controllers.portal import CustomerPortal
from odoo.addons.portal.controllers.portal import pager as portal_pager

from ..models.bookconnect_therapy_session import OPEN_STATES

SESSION_MODEL = "bookconnect.therapy.session"
STATE_BADGES = {
    "scheduled": "text-bg-info",
    "in_progress": "text-bg-primary",
    "done": "text-bg-secondary",
    "invoiced": "text-bg-warning",
    "paid": "text-bg-success",
    "cancelled": "text-bg-light",
    "late_cancelled": "text-bg-danger",
    "no_show": "text-bg-danger",
}
PAYMENT_BADGES = {
    "paid": "text-bg-success",
    "in_payment": "text-bg-info",
    "partial": "text-bg-warning",
    "not_paid": "text-bg-warning",
    "reversed": "text-bg-light",
}
CARD_RETURN_KEY = "bookconnect_card_return"


class TherapyPortal(CustomerPortal):
    """The client's side: My sessions (list, detail, join, pay, cancel)."""

    # ------------------------------------------------------------------
    # Helpers
    # ------------------------------------------------------------------

    def _bookconnect_tz(self):
        """The client's time zone: their own, else their browser's, else the company's."""
        user = request.env.user
        candidates = [] if user._is_public() else [user.tz]
        # sudo: the company's own contact is not readable by every visitor
        candidates += [request.cookies.get("tz"), request.env.company.sudo().partner_id.tz]
        return next((tz for tz in candidates if tz in pytz.all_timezones_set), "UTC")

    def _bookconnect_formatter(self, tz):
        """``fmt(value, pattern)``: a naive UTC datetime in ``tz``, with a babel pattern."""

        def fmt(value, pattern="EEE d MMM y, HH:mm"):
            if not value:
                return ""
            return format_datetime(request.env, value, tz=tz, dt_format=pattern)

        return fmt

    def _bookconnect_display_values(self):
        """Values every therapy portal page uses to show times, states and payment states."""
        tz = self._bookconnect_tz()
        env = request.env
        return {
            "tz": tz,
            "fmt": self._bookconnect_formatter(tz),
            "state_badges": STATE_BADGES,
            "payment_badges": PAYMENT_BADGES,
            "state_labels": dict(env[SESSION_MODEL]._fields["state"]._description_selection(env)),
            "payment_labels": dict(
                env["account.move"]._fields["payment_state"]._description_selection(env)
            ),
        }

    def _bookconnect_sessions_domain(self):
        # Explicit even though record rules restrict portal users: a therapist opening their
        # own portal must see the sessions they attend as a client, not those they run.
        return [("partner_id", "=", request.env.user.partner_id.id)]

    def _bookconnect_is_client(self, session_sudo):
        """Whether the signed-in user is the session's client (not merely a token holder)."""
        user = request.env.user
        return not user._is_public() and session_sudo.partner_id == user.partner_id

    def _bookconnect_policy_summary(self, policy):
        """The policy in plain words, in the visitor's language."""
        return policy._client_summary(request.env.lang) if policy else False

    def _bookconnect_upcoming_sessions_sudo(self, partner):
        """The client's sessions still to come (sudo, for display), soonest first."""
        return (
            request.env[SESSION_MODEL]
            .sudo()
            .search(
                [
                    ("partner_id", "=", partner.id),
                    ("state", "=", "scheduled"),
                    ("start", ">", fields.Datetime.now()),
                ],
                order="start, id",
            )
        )

    def _bookconnect_shortfalls(self, partner, extra=None):
        """The client's upcoming prepaid sessions their balance will not cover, soonest first:
        ``[(session, {"needed", "available", "missing", "balance"})]``. ``extra``: a session
        being booked, counted with the others."""
        if request.env.user._is_public():
            return []
        sessions = self._bookconnect_upcoming_sessions_sudo(partner)
        if extra:
            sessions |= extra
        shortfalls = request.env["bookconnect.client.money"].sudo()._prepaid_shortfalls(sessions)
        return sorted(shortfalls.items(), key=lambda item: (item[0].start, item[0].id or 0))

    def _bookconnect_not_found(self):
        """The answer for a session that does not exist or is not the visitor's: the same
        page either way, so that it never tells which."""
        values = self._prepare_portal_layout_values()
        values.update({"page_name": "bookconnect_session", "therapy_session": False})
        return request.render("bookconnect_therapy.portal_session_not_found", values, status=404)

    # ------------------------------------------------------------------
    # My home
    # ------------------------------------------------------------------

    def _prepare_home_portal_values(self, counters):
        values = super()._prepare_home_portal_values(counters)
        if "bookconnect_session_count" in counters:
            Session = request.env[SESSION_MODEL]
            values["bookconnect_session_count"] = (
                Session.search_count(self._bookconnect_sessions_domain())
                if Session.has_access("read")
                else 0
            )
        return values

    # ------------------------------------------------------------------
    # My sessions
    # ------------------------------------------------------------------

    def _bookconnect_searchbar_sortings(self):
        return {
            "date": {"label": _("Date"), "order": "start desc, id desc"},
            "state": {"label": _("Status"), "order": "state, start desc, id desc"},
        }

    def _bookconnect_searchbar_filters(self):
        now = fields.Datetime.now()
        return OrderedDict(
            [
                ("all", {"label": _("All"), "domain": []}),
                (
                    "upcoming",
                    {
                        "label": _("Upcoming"),
                        "domain": [("state", "in", OPEN_STATES), ("stop", ">=", now)],
                    },
                ),
                (
                    "past",
                    {
                        "label": _("Past and cancelled"),
                        "domain": ["|", ("state", "not in", OPEN_STATES), ("stop", "<", now)],
                    },
                ),
            ]
        )

    @http.route(
        ["/my/sessions", "/my/sessions/page/<int:page>"], type="http", auth="user", website=True
    )
    def portal_my_sessions(self, page=1, sortby=None, filterby=None, **kw):
        values = self._prepare_portal_layout_values()
        Session = request.env[SESSION_MODEL]
        sortings = self._bookconnect_searchbar_sortings()
        filters = self._bookconnect_searchbar_filters()
        sortby = sortby if sortby in sortings else "date"
        filterby = filterby if filterby in filters else "all"
        order = sortings[sortby]["order"]
        if filterby == "upcoming" and sortby == "date":
            order = "start asc, id asc"  # what comes next first
        domain = self._bookconnect_sessions_domain() + filters[filterby]["domain"]
        can_read = Session.has_access("read")
        total = Session.search_count(domain) if can_read else 0
        pager = portal_pager(
            url="/my/sessions",
            url_args={"sortby": sortby, "filterby": filterby},
            total=total,
            page=page,
            step=self._items_per_page,
        )
        sessions = (
            Session.search(domain, order=order, limit=self._items_per_page, offset=pager["offset"])
            if can_read
            else Session
        )
        request.session["my_sessions_history"] = sessions.ids[:100]
        next_session = (
            Session.search(
                self._bookconnect_sessions_domain() + filters["upcoming"]["domain"],
                order="start asc, id asc",
                limit=1,
            )
            if can_read
            else Session
        )
        # sudo for display only: the searches above ran with the client's own rights.
        sessions_sudo = sessions.sudo()
        money = request.env["bookconnect.client.money"].sudo()
        values.update(self._bookconnect_display_values())
        values.update(
            {
                "page_name": "bookconnect_session",
                "default_url": "/my/sessions",
                "sessions": sessions_sudo,
                "invoices": {s.id: money._portal_invoice(s) for s in sessions_sudo},
                "fees": {s.id: self._bookconnect_fee_line(s, values["tz"]) for s in sessions_sudo},
                "shortfalls": self._bookconnect_shortfalls(request.env.user.partner_id),
                "next_session": next_session.sudo(),
                "next_join": next_session and money._join_state(next_session),
                "pager": pager,
                "searchbar_sortings": sortings,
                "sortby": sortby,
                "searchbar_filters": filters,
                "filterby": filterby,
            }
        )
        return request.render("bookconnect_therapy.portal_my_sessions", values)

    def _bookconnect_fee_line(self, session_sudo, tz):
        """The session's fee not invoiced yet (in review, waived or kept), for the list."""
        if not session_sudo.fee_state:
            return False
        lines = session_sudo._client_money_lines(tz=tz)
        return next((line for line in lines if line["kind"] == "fee"), False)

    def _bookconnect_session_page_values(self, session_sudo, access_token, **kwargs):
        is_client = self._bookconnect_is_client(session_sudo)
        invoice = request.env["bookconnect.client.money"].sudo()._portal_invoice(session_sudo)
        now = fields.Datetime.now()
        upcoming = session_sudo.state == "scheduled" and session_sudo.stop > now
        display = self._bookconnect_display_values()
        join = request.env["bookconnect.client.money"].sudo()._join_state(session_sudo)
        shortfall = (
            dict(self._bookconnect_shortfalls(session_sudo.partner_id)).get(session_sudo)
            if is_client and upcoming
            else None
        )
        values = {
            **display,
            "page_name": "bookconnect_session",
            "therapy_session": session_sudo,
            "is_client": is_client,
            "join": join,
            "session_invoice": invoice,
            "invoice_url": invoice.get_portal_url() if invoice else False,
            "invoice_to_pay": bool(invoice) and invoice._has_to_be_paid(),
            "requirements": (
                request.env["bookconnect.booking"]._booking_requirements(session_sudo)
                if is_client and upcoming
                else []
            ),
            "policy_summary": self._bookconnect_policy_summary(session_sudo.policy_id),
            "can_cancel": is_client and session_sudo.state == "scheduled",
            "cancel_terms": (
                session_sudo.env["bookconnect.fee.manager"]._cancellation_terms(
                    session_sudo, now, tz=display["tz"]
                )
                if session_sudo.state == "scheduled" and session_sudo.start > now
                else False
            ),
            "money_lines": session_sudo._client_money_lines(tz=display["tz"]),
            "shortfall": shortfall,
            "booked": kwargs.get("booked"),
            "cancelled": kwargs.get("cancelled"),
        }
        # The actions card only when it has something to offer: never an empty box.
        values["has_actions"] = bool(
            not join["over"] or values["invoice_to_pay"] or invoice or values["can_cancel"]
        )
        return self._get_page_view_values(
            session_sudo, access_token, values, "my_sessions_history", False, **kwargs
        )

    @http.route(["/my/sessions/<int:session_id>"], type="http", auth="public", website=True)
    def portal_my_session(self, session_id, access_token=None, **kw):
        try:
            session_sudo = self._document_check_access(SESSION_MODEL, session_id, access_token)
        except (AccessError, MissingError):
            if request.env.user._is_public():
                # Signed out: the client's own session is behind signing in (never says if
                # it exists).
                return request.redirect(
                    "/web/login?" + url_encode({"redirect": f"/my/sessions/{session_id}"})
                )
            return self._bookconnect_not_found()
        values = self._bookconnect_session_page_values(session_sudo, access_token, **kw)
        if (
            request.session.get(CARD_RETURN_KEY) == session_sudo.access_url
            and "card" not in values["requirements"]
        ):
            request.session.pop(CARD_RETURN_KEY)
        return request.render("bookconnect_therapy.portal_my_session", values)

    def _bookconnect_client_session(self, session_id):
        """The signed-in client's own session (their rights checked), or ``None``."""
        session = request.env[SESSION_MODEL].browse(session_id).exists()
        if not session or not session.has_access("read"):
            return None
        if session.sudo().partner_id != request.env.user.partner_id:
            return None
        return session

    @http.route(
        ["/my/sessions/<int:session_id>/cancel"],
        type="http",
        auth="user",
        website=True,
        methods=["GET", "POST"],
    )
    def portal_my_session_cancel(self, session_id, confirm_late=None, **kw):
        """GET: what cancelling now costs; POST: cancel, if the outcome is still the one shown."""
        session = self._bookconnect_client_session(session_id)
        if not session:
            return self._bookconnect_not_found()
        session_sudo = session.sudo()
        if session_sudo.state != "scheduled":
            return request.redirect(session_sudo.access_url)
        preview = session_sudo.env["bookconnect.fee.manager"]._cancellation_preview(session_sudo)
        if request.httprequest.method == "POST":
            # The free window may close between the confirm page and the click: never charge
            # a fee the client was not shown.
            if preview["late"] == (confirm_late == "1"):
                try:
                    session.action_client_cancel()
                except UserError as exc:
                    kw["error"] = str(exc)
                else:
                    return request.redirect(f"{session_sudo.access_url}?cancelled=1")
            else:
                kw["changed"] = True
        values = self._prepare_portal_layout_values()
        values.update(self._bookconnect_display_values())
        values.update(
            {
                "page_name": "bookconnect_session",
                "therapy_session": session_sudo,
                "cancel_page": True,
                "preview": preview,
                "fee_text": format_amount(request.env, preview["fee"], preview["currency"]),
                "grace_minutes": session_sudo.policy_id.cancel_grace_minutes,
                "window_hours": session_sudo.policy_id.free_cancel_hours,
                "changed": kw.get("changed"),
                "error": kw.get("error"),
                "policy_summary": self._bookconnect_policy_summary(session_sudo.policy_id),
            }
        )
        return request.render("bookconnect_therapy.portal_my_session_cancel", values)

    @http.route(["/my/sessions/<int:session_id>/card"], type="http", auth="user", website=True)
    def portal_my_session_card(self, session_id, **kw):
        """Send the client to save a card, with a way back to this session afterwards."""
        session = self._bookconnect_client_session(session_id)
        if not session:
            return self._bookconnect_not_found()
        request.session[CARD_RETURN_KEY] = session.sudo().access_url
        return request.redirect("/my/payment_method")


class TherapyPaymentPortal(PaymentPortal):
    def _get_extra_payment_form_values(self, **kwargs):
        """On the saved-cards page, offer the way back to the booking that asked for a card."""
        values = super()._get_extra_payment_form_values(**kwargs)
        return_url = request.session.get(CARD_RETURN_KEY)
        if return_url and request.httprequest.path == "/my/payment_method":
            values["bookconnect_return_url"] = return_url
        return values
