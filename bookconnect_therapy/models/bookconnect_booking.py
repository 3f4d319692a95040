from datetime import datetime, time, timedelta

import pytz

from odoo import _, api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL, email_normalize

from odoo.addons.auth_signup.models.res_partner import SignupError

from ..core import free_slots

CANCELLED_STATES = ("cancelled", "late_cancelled")
# Slot starts fall on quarter hours (in every time zone whose offset is whole quarter hours).
SLOT_GRID = timedelta(minutes=15)
MIN_PASSWORD_LENGTH = 8
# A payment the client started this recently is left to finish before a booking is released.
PAYMENT_STARTED_GRACE = timedelta(minutes=15)


# Why a time asked for cannot be booked (see ``_slot_unavailable_reason``).
UNAVAILABLE_REASONS = ("taken", "past", "window", "not_offered")


class SlotTaken(UserError):
    """The time asked for is not (or no longer) offered; ``reason`` says why: ``taken`` (booked
    or otherwise taken meanwhile), ``past``, ``window`` (outside the booking window) or
    ``not_offered`` (not one of the times offered)."""

    def __init__(self, message, reason="taken"):
        super().__init__(message)
        self.reason = reason


class BookconnectBooking(models.AbstractModel):
    _name = "bookconnect.booking"
    _description = "Online booking of therapy sessions"

    # ------------------------------------------------------------------
    # Who and when
    # ------------------------------------------------------------------

    @api.model
    def _bookable_therapists(self):
        """Therapists who take online bookings (sudo: the booking pages are public)."""
        group = self.env.ref("bookconnect_therapy.group_therapist")
        return (
            self.env["res.users"]
            .sudo()
            .search(
                [
                    ("bookconnect_bookable", "=", True),
                    ("groups_id", "in", group.id),
                    ("share", "=", False),
                ],
                order="name, id",
            )
        )

    @api.model
    def _therapist_from_slug(self, value):
        """The bookable therapist named by ``value`` (``name-id`` or ``id``), else empty."""
        _name, therapist_id = self.env["ir.http"]._unslug(value or "")
        if not therapist_id:
            return self.env["res.users"]
        return self._bookable_therapists().filtered(lambda user: user.id == therapist_id)

    @api.model
    def _booking_window(self, therapist, now=None):
        """``(not_before, not_after)`` of the slots offered now (naive UTC), per the settings."""
        company = therapist.company_id
        now = (now or fields.Datetime.now()).replace(microsecond=0)
        return (
            now + timedelta(hours=company.bookconnect_booking_notice_hours),
            now + timedelta(days=company.bookconnect_booking_horizon_days),
        )

    @api.model
    def _working_intervals(self, therapist, start, end):
        """The therapist's working time between two naive UTC datetimes, as naive UTC pairs.

        Working hours are the therapist's own (``resource_calendar_id``), else the company's;
        the calendar's leaves and public holidays are left out.
        """
        therapist = therapist.sudo()
        calendar = therapist.resource_calendar_id or therapist.company_id.resource_calendar_id
        if not calendar:
            return []
        resource = therapist.resource_ids.filtered(lambda r: r.calendar_id == calendar)[:1]
        # A resource carries its own time zone; without one, the therapist works in theirs.
        tz = None if resource else pytz.timezone(therapist.tz or calendar.tz or "UTC")
        intervals = calendar._work_intervals_batch(
            pytz.utc.localize(start), pytz.utc.localize(end), resources=resource or None, tz=tz
        )[resource.id]
        return [
            (
                lo.astimezone(pytz.utc).replace(tzinfo=None),
                hi.astimezone(pytz.utc).replace(tzinfo=None),
            )
            for lo, hi, _records in intervals
        ]

    @api.model
    def _busy_intervals(self, therapist, start, end):
        """When the therapist is taken between ``start`` and ``end`` (naive UTC): their
        sessions that are not cancelled, and calendar events they attend shown as busy."""
        therapist = therapist.sudo()
        partner = therapist.partner_id
        sessions = (
            self.env["bookconnect.therapy.session"]
            .sudo()
            .search(
                [
                    ("therapist_id", "=", therapist.id),
                    ("state", "not in", CANCELLED_STATES),
                    ("start", "<", end),
                    ("stop", ">", start),
                ]
            )
        )
        busy = [(session.start, session.stop) for session in sessions]
        # All-day events are stored from 08:00 to 18:00 of their days: look a day wider.
        events = (
            self.env["calendar.event"]
            .sudo()
            .search(
                [
                    ("partner_ids", "in", partner.id),
                    ("show_as", "=", "busy"),
                    ("start", "<", end + timedelta(days=1)),
                    ("stop", ">", start - timedelta(days=1)),
                ]
            )
        )
        tz = pytz.timezone(therapist.tz or "UTC")
        for event in events:
            declined = event.attendee_ids.filtered(
                lambda a: a.partner_id == partner and a.state == "declined"
            )
            if declined:
                continue
            if event.allday:
                day_start = tz.localize(datetime.combine(event.start_date, time.min))
                day_end = tz.localize(
                    datetime.combine(event.stop_date + timedelta(days=1), time.min)
                )
                busy.append(
                    (
                        day_start.astimezone(pytz.utc).replace(tzinfo=None),
                        day_end.astimezone(pytz.utc).replace(tzinfo=None),
                    )
                )
            else:
                busy.append((event.start, event.stop))
        return busy

    @api.model
    def _free_slots(self, therapist, now=None):
        """The slots clients can book with ``therapist`` now: ``[(start, stop)]`` naive UTC."""
        company = therapist.sudo().company_id
        not_before, not_after = self._booking_window(therapist, now)
        length = timedelta(minutes=company.bookconnect_booking_slot_minutes)
        buffer = timedelta(minutes=company.bookconnect_booking_buffer_minutes)
        working = self._working_intervals(therapist, not_before, not_after)
        if not working:
            return []
        busy = self._busy_intervals(therapist, not_before - buffer, not_after + buffer)
        return free_slots(
            working,
            busy,
            length,
            buffer=buffer,
            align=SLOT_GRID,
            not_before=not_before,
            not_after=not_after,
        )

    @api.model
    def _slot_unavailable_reason(self, therapist, start, now=None):
        """Why the slot starting at ``start`` (naive UTC) cannot be booked now, if it cannot.

        :return: ``None`` when it is offered; else ``past``, ``window`` (before the minimum
            notice or beyond the booking horizon), ``taken`` (it would be offered were the
            therapist not busy then: booked meanwhile) or ``not_offered`` (off the grid, or
            outside working hours).
        """
        now = (now or fields.Datetime.now()).replace(microsecond=0)
        if any(slot == start for slot, _stop in self._free_slots(therapist, now)):
            return None
        if start <= now:
            return "past"
        company = therapist.sudo().company_id
        length = timedelta(minutes=company.bookconnect_booking_slot_minutes)
        not_before, not_after = self._booking_window(therapist, now)
        # (Compared without adding to ``start``: a made-up date near year 9999 must not overflow.)
        if start < not_before or start > not_after - length:
            return "window"
        working = self._working_intervals(therapist, not_before, not_after)
        unbusy = free_slots(
            working,
            [],
            length,
            buffer=timedelta(minutes=company.bookconnect_booking_buffer_minutes),
            align=SLOT_GRID,
            not_before=not_before,
            not_after=not_after,
        )
        return "taken" if any(slot == start for slot, _stop in unbusy) else "not_offered"

    @api.model
    def _slot_unavailable_message(self, therapist, reason):
        """What to tell the client for a ``reason`` of :meth:`_slot_unavailable_reason`."""
        company = therapist.sudo().company_id
        return {
            "taken": _(
                "Sorry, this time with %(therapist)s is no longer available: it was just "
                "booked. Please choose another time.",
                therapist=therapist.name,
            ),
            "past": _("That time has already passed. Please choose one of the times offered."),
            "window": _(
                "Sessions with %(therapist)s can be booked from %(hours)s hours to %(days)s days "
                "ahead. Please choose one of the times offered.",
                therapist=therapist.name,
                hours=company.bookconnect_booking_notice_hours,
                days=company.bookconnect_booking_horizon_days,
            ),
            "not_offered": _(
                "That is not one of the times %(therapist)s offers. Please choose one of the "
                "times offered.",
                therapist=therapist.name,
            ),
        }[reason]

    # ------------------------------------------------------------------
    # Booking
    # ------------------------------------------------------------------

    @api.model
    def _lock_therapist(self, therapist):
        """Serialise the bookings of one therapist.

        Odoo's transactions are REPEATABLE READ: a transaction that only waited for a lock would
        still read the snapshot it started with and miss the session its rival just committed.
        Writing the therapist's row instead makes PostgreSQL refuse the second writer with a
        serialisation failure once the first commits; Odoo retries that request (or job) from
        the start with a fresh snapshot, which then sees the slot taken.
        """
        self.env.cr.execute(
            SQL(
                "UPDATE res_users SET bookconnect_booking_seq = "
                "COALESCE(bookconnect_booking_seq, 0) + 1 WHERE id = %s",
                therapist.id,
            ),
            log_exceptions=False,
        )
        therapist.invalidate_recordset(["bookconnect_booking_seq"])

    @api.model
    def _book(self, therapist, partner, start, now=None):
        """Book the slot starting at ``start`` (naive UTC) with ``therapist`` for ``partner``.

        :return: the new session (sudo), scheduled; when its policy asks for a saved card or
            payment up front that the client has not given yet, it is released unless they do
            by its ``confirm_by``.
        :raise SlotTaken: the slot is not (or no longer) offered.
        :raise UserError: the client already has a session at that time.
        """
        therapist = therapist.sudo()
        self._lock_therapist(therapist)
        slot = next((s for s in self._free_slots(therapist, now) if s[0] == start), None)
        if not slot:
            reason = self._slot_unavailable_reason(therapist, start, now) or "taken"
            raise SlotTaken(self._slot_unavailable_message(therapist, reason), reason)
        Session = self.env["bookconnect.therapy.session"].sudo()
        clash = Session.search_count(
            [
                ("partner_id", "=", partner.id),
                ("state", "not in", CANCELLED_STATES),
                ("start", "<", slot[1]),
                ("stop", ">", slot[0]),
            ],
            limit=1,
        )
        if clash:
            raise UserError(_("You already have a session at that time."))
        created = (now or fields.Datetime.now()).replace(microsecond=0)
        session = Session.create(
            {
                "therapist_id": therapist.id,
                "partner_id": partner.id,
                "company_id": therapist.company_id.id,
                "start": slot[0],
                "stop": slot[1],
                "channel": "video",
                "booked_online": True,
                "booked_at": created,
            }
        )
        session._confirm()
        confirm_minutes = therapist.company_id.bookconnect_booking_confirm_minutes
        if confirm_minutes and self._booking_requirements(session):
            # Never later than the start: an unconfirmed session does not take place.
            deadline = min(created + timedelta(minutes=confirm_minutes), session.start)
            session.write({"confirm_by": deadline})
        session.message_post(
            body=_("Booked online by %(client)s.", client=partner.name),
            author_id=partner.id,
        )
        return session

    @api.model
    def _signup_client(self, name, email, password, tz=None):
        """Create the client account of a visitor who books online.

        A new contact is always created: attaching the account to an existing contact with the
        same email would hand that contact's sessions and invoices to whoever typed the address.

        :return: the new portal user (sudo).
        :raise UserError: on a missing name or one with control characters, an invalid email,
            a short password, or an email that already has an account.
        """
        name = (name or "").strip()
        login = email_normalize(email or "")
        if not name:
            raise UserError(_("Please enter your name."))
        if not name.isprintable():
            raise UserError(_("Your name contains characters that cannot be used."))
        if not login:
            raise UserError(_("Please enter a valid email address."))
        if len(password or "") < MIN_PASSWORD_LENGTH:
            raise UserError(
                _(
                    "Choose a password of at least %(count)s characters.",
                    count=MIN_PASSWORD_LENGTH,
                )
            )
        Users = self.env["res.users"].sudo().with_context(active_test=False)
        if Users.search_count(
            ["|", ("login", "=ilike", login), ("email", "=ilike", login)], limit=1
        ):
            raise UserError(
                _("An account already exists for %(email)s: sign in to book.", email=login)
            )
        partner_values = {"name": name, "email": login}
        if tz in pytz.all_timezones_set:
            partner_values["tz"] = tz
        partner = self.env["res.partner"].sudo().create(partner_values)
        try:
            return Users.with_context(no_reset_password=True)._signup_create_user(
                {"login": login, "name": name, "partner_id": partner.id, "password": password}
            )
        except SignupError as exc:
            raise UserError(_("Your account could not be created: %(error)s", error=exc)) from exc

    @api.model
    def _signup_and_book(self, therapist, start, user=None, signup=None):
        """Book ``start`` with ``therapist`` for ``user``, or for a new client account made
        from ``signup`` first; all or nothing.

        :param user: the signed-in client (``res.users``); ignored with ``signup``
        :param signup: dict of ``name``, ``email``, ``password`` and ``tz`` of a visitor
        :return: ``(user, session)``: the client's account and the new session (sudo)
        :raise SlotTaken, UserError, ValidationError: as :meth:`_book` and
            :meth:`_signup_client`; nothing is kept then
        """
        with self.env.cr.savepoint():
            if signup is not None:
                user = self._signup_client(
                    signup.get("name"),
                    signup.get("email"),
                    signup.get("password"),
                    tz=signup.get("tz"),
                )
            return user, self._book(therapist, user.partner_id, start)

    # ------------------------------------------------------------------
    # Confirmation of online bookings
    # ------------------------------------------------------------------

    @api.model
    def _booking_requirements(self, session):
        """What the client must still do before this booking is confirmed, per its policy.

        :return: list of ``"card"`` (save a card: the policy charges or holds it) and
            ``"prepay"`` (pay the booked price up front).
        """
        session.ensure_one()
        policy = session.policy_id
        missing = []
        needs_card = policy.require_card or policy.prepayment == "hold"
        if needs_card and not session.partner_id._bookconnect_payment_token(session.company_id):
            missing.append("card")
        if policy.prepayment == "full" and session.sudo().invoice_id.payment_state not in (
            "paid",
            "in_payment",
        ):
            missing.append("prepay")
        return missing

    @api.model
    def _payment_in_flight(self, session, now):
        """A payment for the session's invoice is under way: sent to the provider and not
        final yet, or started by the client in the last few minutes."""
        session.ensure_one()
        recent = now - PAYMENT_STARTED_GRACE
        for tx in session.sudo().invoice_id.transaction_ids:
            if tx.state in ("pending", "authorized") or (
                tx.state == "draft" and tx.create_date >= recent
            ):
                return True
        return False

    @api.model
    def _cron_release_unconfirmed_bookings(self, batch_size=200):
        """Give back the slots of online bookings the client never confirmed: the policy asks
        for a saved card or payment up front and it was not given by the session's
        ``confirm_by``. No fee; an unpaid advance invoice is cancelled with a credit note; the
        client is told by email. A payment under way postpones the release.

        :return: the sessions released
        """
        now = fields.Datetime.now()
        Session = self.env["bookconnect.therapy.session"].sudo()
        candidates = Session.search(
            [("state", "=", "scheduled"), ("confirm_by", "<=", now)],
            order="confirm_by, id",
            limit=batch_size + 1,
        )
        remaining = max(len(candidates) - batch_size, 0)
        candidates = candidates[:batch_size]
        confirmed = candidates.filtered(lambda s: not self._booking_requirements(s))
        confirmed.write({"confirm_by": False})
        due = (candidates - confirmed).filtered(lambda s: not self._payment_in_flight(s, now))
        released = due._cancel(by="unconfirmed")
        labels = {"card": _("a saved card"), "prepay": _("payment in advance")}
        for session in released:
            missing = ", ".join(labels[need] for need in self._booking_requirements(session))
            session.message_post(
                body=_(
                    "Online booking released: the client did not confirm it in time "
                    "(missing: %(missing)s).",
                    missing=missing,
                )
            )
        self.env["bookconnect.reminder.manager"]._notify_clients(
            released, "bookconnect_therapy.mail_template_booking_released"
        )
        self.env["ir.cron"]._notify_progress(done=len(released), remaining=remaining)
        return released
