from collections import OrderedDict
from datetime import datetime, timedelta

from werkzeug.exceptions import NotFound
from werkzeug.urls import url_encode

from odoo import fields, http
from odoo.exceptions import UserError, ValidationError
from odoo.http import request
from odoo.tools import format_amount

from ..models.bookconnect_booking import UNAVAILABLE_REASONS, SlotTaken
from .portal import SESSION_MODEL, TherapyPortal


class TherapyBookingPortal(TherapyPortal):
    """The public booking pages: therapists, their free times, and the confirmation, with
    sign-up for a visitor."""

    def _bookconnect_booking_values(self, therapist=None):
        values = self._prepare_portal_layout_values()
        values.update(self._bookconnect_display_values())
        values.update(
            {
                "page_name": "bookconnect_booking",
                "therapist": therapist,
                "slug": request.env["ir.http"]._slug,
                "is_public": request.env.user._is_public(),
                "confirm_url": lambda therapist, start: (
                    f"/book/{request.env['ir.http']._slug(therapist)}/confirm?"
                    + url_encode({"start": fields.Datetime.to_string(start)})
                ),
            }
        )
        return values

    def _bookconnect_parse_start(self, value):
        """A slot start from a form (``YYYY-MM-DD HH:MM:SS`` or ISO, naive UTC), or None."""
        try:
            start = datetime.fromisoformat((value or "").strip())
        except ValueError:
            return None
        return start if start.tzinfo is None else None

    @http.route(["/book"], type="http", auth="public", website=True)
    def book_therapists(self, **kw):
        Booking = request.env["bookconnect.booking"]
        therapists = Booking._bookable_therapists()
        values = self._bookconnect_booking_values()
        values.update(
            {
                "therapists": therapists,
                "first_slots": {t.id: next(iter(Booking._free_slots(t)), None) for t in therapists},
            }
        )
        return request.render("bookconnect_therapy.booking_therapists", values)

    @http.route(["/book/<string:therapist_slug>"], type="http", auth="public", website=True)
    def book_slots(self, therapist_slug, **kw):
        Booking = request.env["bookconnect.booking"]
        therapist = Booking._therapist_from_slug(therapist_slug)
        if not therapist:
            raise NotFound()
        values = self._bookconnect_booking_values(therapist)
        fmt = values["fmt"]
        days = OrderedDict()
        for start, stop in Booking._free_slots(therapist):
            days.setdefault(fmt(start, "EEEE d MMMM"), []).append((start, stop))
        partner = request.env.user.partner_id
        preview = self._bookconnect_preview_session(therapist, partner)
        reason = "taken" if kw.get("taken") else kw.get("unavailable")
        values.update(
            {
                "days": days,
                "unavailable": reason if reason in UNAVAILABLE_REASONS else False,
                "unavailable_text": (
                    Booking._slot_unavailable_message(therapist, reason)
                    if reason in UNAVAILABLE_REASONS
                    else False
                ),
                "policy_summary": self._bookconnect_policy_summary(preview.policy_id),
            }
        )
        return request.render("bookconnect_therapy.booking_slots", values)

    def _bookconnect_preview_session(self, therapist, partner, start=None):
        """An unsaved session showing the policy, price and duration a booking would get."""
        company = therapist.company_id
        start = start or fields.Datetime.now().replace(microsecond=0)
        return (
            request.env[SESSION_MODEL]
            .sudo()
            .new(
                {
                    "therapist_id": therapist.id,
                    "partner_id": partner.id if not request.env.user._is_public() else False,
                    "company_id": company.id,
                    "start": start,
                    "stop": start + timedelta(minutes=company.bookconnect_booking_slot_minutes),
                    "state": "scheduled",
                }
            )
        )

    @http.route(
        ["/book/<string:therapist_slug>/confirm"],
        type="http",
        auth="public",
        website=True,
        methods=["GET", "POST"],
    )
    def book_confirm(self, therapist_slug, start=None, **post):
        Booking = request.env["bookconnect.booking"]
        therapist = Booking._therapist_from_slug(therapist_slug)
        if not therapist:
            raise NotFound()
        slots_url = f"/book/{request.env['ir.http']._slug(therapist)}"

        def unavailable(reason):
            query = "taken=1" if reason == "taken" else url_encode({"unavailable": reason})
            return request.redirect(f"{slots_url}?{query}")

        start_dt = self._bookconnect_parse_start(start)
        if not start_dt:
            return unavailable("not_offered")
        is_public = request.env.user._is_public()
        new_clients = therapist.company_id.bookconnect_booking_new_clients
        error = None
        if request.httprequest.method == "POST":
            if is_public and not new_clients:
                raise NotFound()
            signup = None
            if is_public:
                signup = {key: post.get(key) for key in ("name", "email", "password")}
                signup["tz"] = request.cookies.get("tz")
            try:
                user, session_sudo = Booking._signup_and_book(
                    therapist, start_dt, user=request.env.user, signup=signup
                )
            except SlotTaken as exc:
                return unavailable(exc.reason)
            except (UserError, ValidationError) as exc:
                error = exc.args[0] if exc.args else str(exc)
            else:
                if is_public:
                    # authenticate() looks the new account up in a cursor of its own.
                    request.env.cr.commit()
                    request.session.authenticate(
                        request.db,
                        {"login": user.login, "password": post.get("password"), "type": "password"},
                    )
                return request.redirect(f"{session_sudo.access_url}?booked=1")
        reason = Booking._slot_unavailable_reason(therapist, start_dt)
        if reason:
            return unavailable(reason)
        preview = self._bookconnect_preview_session(
            therapist, request.env.user.partner_id, start_dt
        )
        policy = preview.policy_id
        values = self._bookconnect_booking_values(therapist)
        now = fields.Datetime.now()
        shortfall = (
            dict(self._bookconnect_shortfalls(request.env.user.partner_id, preview)).get(preview)
            if policy
            else None
        )
        values.update(
            {
                "start": start_dt,
                "stop": preview.stop,
                "duration": preview.duration,
                "preview": preview,
                "price_text": (
                    format_amount(request.env, preview.estimated_amount, preview.currency_id)
                    if policy
                    else False
                ),
                "cancel_terms": (
                    preview.env["bookconnect.fee.manager"]._cancellation_terms(
                        preview, now, booked_at=now, tz=values["tz"], before_booking=True
                    )
                    if policy
                    else False
                ),
                "shortfall": shortfall,
                "policy_summary": self._bookconnect_policy_summary(policy),
                "new_clients": new_clients,
                "error": error,
                "form": post,
                "login_url": "/web/login?"
                + url_encode({"redirect": f"{slots_url}/confirm?{url_encode({'start': start})}"}),
                "slots_url": slots_url,
            }
        )
        return request.render("bookconnect_therapy.booking_confirm", values)
