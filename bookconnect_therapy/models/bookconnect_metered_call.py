import logging
from collections import defaultdict
from datetime import timedelta

from odoo import _, api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.osv import expression
from odoo.tools import SQL

from ..core import billable_seconds, total_seconds, union
from ..core.intervals import intersect

_logger = logging.getLogger(__name__)

ROLES = [("therapist", "Therapist"), ("client", "Client")]
# Sessions whose call may still be joined and measured.
OPEN_STATES = ("scheduled", "in_progress")
# A Discuss connection silent this long has gone quiet: it ends at its last heartbeat.
HEARTBEAT_QUIET = timedelta(minutes=1)
# External events this far outside the booked slot are not about this session.
SLOT_MARGIN = timedelta(hours=12)
# How far a video service's clock may run ahead of the server's: an event dated later has
# not happened yet, and would start (or end) a session before its time.
FUTURE_SKEW = timedelta(minutes=2)


class BookconnectMeteredCall(models.Model):
    _name = "bookconnect.metered.call"
    _description = "Metered therapy call"
    _order = "id desc"
    _rec_name = "session_id"

    session_id = fields.Many2one(
        "bookconnect.therapy.session", required=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one(related="session_id.company_id", store=True, index=True)
    therapist_id = fields.Many2one(related="session_id.therapist_id", store=True, index=True)
    therapist_partner_id = fields.Many2one(
        related="session_id.therapist_id.partner_id", string="Therapist (contact)"
    )
    client_id = fields.Many2one(related="session_id.partner_id", string="Client")
    segment_ids = fields.One2many("bookconnect.call.segment", "call_id", "Segments")
    event_ids = fields.One2many("bookconnect.call.event", "call_id", "External events")
    therapist_seconds = fields.Integer(compute="_compute_measure", store=True)
    client_seconds = fields.Integer(compute="_compute_measure", store=True)
    billable_seconds = fields.Integer(
        "Together (s)",
        compute="_compute_measure",
        store=True,
        help="Seconds the therapist and the client were connected at the same time.",
    )
    live = fields.Boolean(compute="_compute_measure", store=True, help="Someone is connected.")
    client_joined = fields.Boolean(compute="_compute_measure", store=True)
    first_joined_at = fields.Datetime(compute="_compute_measure", store=True)
    last_activity_at = fields.Datetime(compute="_compute_measure", store=True)

    _sql_constraints = [
        ("session_unique", "UNIQUE(session_id)", "A session has one metered call."),
    ]

    @api.depends(
        "segment_ids.start", "segment_ids.end", "segment_ids.last_seen", "segment_ids.role"
    )
    def _compute_measure(self):
        """Measure each call with the engine. A connection still open counts up to its last
        sign of life (``last_seen``), so that the stored figure never runs ahead of the facts."""
        for call in self:
            by_role = defaultdict(list)
            live = False
            last_activity = False
            for segment in call.segment_ids:
                end = segment.end or max(segment.last_seen or segment.start, segment.start)
                live = live or not segment.end
                by_role[segment.role].append((segment.start, end))
                last_activity = max(last_activity or end, end)
            therapist = union(by_role["therapist"])
            client = union(by_role["client"])
            call.therapist_seconds = total_seconds(therapist)
            call.client_seconds = total_seconds(client)
            call.billable_seconds = total_seconds(intersect(therapist, client))
            call.live = live
            call.client_joined = bool(by_role["client"])
            starts = call.segment_ids.mapped("start")
            call.first_joined_at = min(starts) if starts else False
            call.last_activity_at = last_activity

    def _lock(self):
        """Serialise the events of each call: the first writer goes on, the next one waits.

        The call's row is written, not only locked: Odoo's transactions are REPEATABLE READ,
        and an event that changes no figure of the call still replaces its segments, which a
        rival that only waited for a lock would then delete a second time. Writing the row
        makes PostgreSQL refuse the rival at once with a serialization failure when the first
        commits; Odoo runs that request again, with a snapshot that sees the change. Expected
        under load: not an error worth logging.
        """
        if self.ids:
            self.env.cr.execute(
                SQL(
                    "UPDATE %s SET write_date = write_date WHERE id IN %s",
                    SQL.identifier(self._table),
                    tuple(self.ids),
                ),
                log_exceptions=False,
            )

    # Participants

    def _role_of(self, partner):
        """``therapist``, ``client`` or ``False`` for anyone else (never metered)."""
        self.ensure_one()
        if partner and partner == self.therapist_partner_id:
            return "therapist"
        if partner and partner == self.client_id:
            return "client"
        return False

    def _partner_of(self, role):
        self.ensure_one()
        return self.therapist_partner_id if role == "therapist" else self.client_id

    def _started_sessions(self):
        """The sessions of these calls that are still scheduled although someone joined:
        their owner marks them in progress (the call never writes its session)."""
        return self.session_id.filtered(lambda s: s.state == "scheduled" and s.call_id.segment_ids)

    # Who may start a call

    def _check_can_start(self):
        """The one rule for every way into a session's call (call-events endpoint, join link,
        Discuss call, chat): a prepaid session does not start with less than the policy's
        minimum balance. A call already begun (someone joined) is not stopped at the door.

        :raise UserError: saying how much is missing.
        """
        for call in self:
            session = call.session_id
            policy = session.policy_id
            begun = session.state != "scheduled" or call.segment_ids
            if policy.prepayment != "balance" or begun:
                continue
            partner = call.client_id
            balance = self.env["bookconnect.prepaid.balance"]._balances(
                partner, session.company_id
            )[partner]
            currency = session.currency_id
            if currency.compare_amounts(balance, policy.minimum_balance) < 0:
                raise UserError(
                    _(
                        "The prepaid balance (%(balance)s) is below the %(minimum)s needed to "
                        "start this session: please top up first.",
                        balance=currency.format(balance),
                        minimum=currency.format(policy.minimum_balance),
                    )
                )

    # Measuring

    def _live_seconds(self, now=None):
        """Seconds therapist and client have been connected together so far, counting the
        connections still open up to ``now``."""
        self.ensure_one()
        now = now or fields.Datetime.now()
        therapist, client = [], []
        for segment in self.sudo().segment_ids:
            (therapist if segment.role == "therapist" else client).append(
                (segment.start, segment.end or None)
            )
        return billable_seconds(therapist, client, now=now)

    @api.model
    def _heartbeat_end(self, segment, beat, now, automatic=False):
        """When a Discuss connection ends: at its last heartbeat ``beat`` when it has gone
        quiet (or when the sweep ends it), else ``now``; never before it started."""
        end = beat if beat and (automatic or beat < now - HEARTBEAT_QUIET) else now
        return max(end, segment.start)

    def _close_open_segments(self, now, automatic=False):
        """Close every open connection of the calls.

        A Discuss connection ends at its last heartbeat when it has gone quiet, else now. An
        external connection ends now when the therapist ends the session; when the sweep ends
        it, at the scheduled end at the latest (a lost "left" event is not billed).
        """
        open_segments = self.segment_ids.filtered(lambda s: not s.end)
        if not open_segments:
            return
        rtc_ids = [s.rtc_session_id for s in open_segments if s.rtc_session_id]
        heartbeats = {
            rtc.id: rtc.write_date
            for rtc in self.env["discuss.channel.rtc.session"].sudo().browse(rtc_ids).exists()
        }
        for segment in open_segments:
            if segment.source == "discuss":
                beat = heartbeats.get(segment.rtc_session_id) or segment.last_seen
                end = self._heartbeat_end(segment, beat, now, automatic=automatic)
            else:
                end = max(min(now, segment.session_id.stop) if automatic else now, segment.start)
            segment.write({"end": end, "last_seen": end})

    # Discuss calls

    @api.model
    def _open_discuss_segments(self, rtc_sessions):
        """Start measuring the therapist or client who joined a therapy session's call.

        :param rtc_sessions: new ``discuss.channel.rtc.session`` records
        :return: the sessions that started with these connections
        :raise UserError: when the client may not start the session yet (prepaid minimum)
        """
        values = []
        now = fields.Datetime.now()
        for rtc in rtc_sessions.sudo():
            session = rtc.channel_id.bookconnect_session_id
            if session.state not in OPEN_STATES:
                continue
            call = session.call_id
            role = call._role_of(rtc.partner_id)
            if not role:
                continue  # not one of the two: never metered
            if role == "client":
                call._check_can_start()
            values.append(
                call._prepare_segment_values(role, now, source="discuss", rtc_session_id=rtc.id)
            )
        segments = self.env["bookconnect.call.segment"].sudo().create(values)
        return segments.call_id._started_sessions()

    @api.model
    def _close_discuss_segments(self, rtc_sessions):
        """Close the segments of the Discuss connections being deleted.

        A connection removed because it went quiet (garbage collection of dead sessions) ends
        at its last heartbeat, ``write_date``; one removed while alive (the person hung up)
        ends now.
        """
        segments = (
            self.env["bookconnect.call.segment"]
            .sudo()
            .search([("rtc_session_id", "in", rtc_sessions.ids), ("end", "=", False)])
        )
        if not segments:
            return
        now = fields.Datetime.now()
        beats = {rtc.id: rtc.write_date for rtc in rtc_sessions.sudo()}
        for segment in segments:
            end = self._heartbeat_end(segment, beats.get(segment.rtc_session_id), now)
            segment.write({"end": end, "last_seen": end})

    @api.model
    def _collect_dead_discuss_sessions(self):
        """Delete the Discuss call connections of therapy channels that stopped sending
        heartbeats, as Odoo's own garbage collection would: their segments end at the last
        heartbeat instead of waiting for the daily clean-up."""
        rtc = self.env["discuss.channel.rtc.session"].sudo()
        dead = rtc.search(
            [
                ("channel_id.bookconnect_session_id", "!=", False),
                *rtc._inactive_rtc_session_domain(),
            ]
        )
        dead.unlink()

    # Chat

    def _prepare_segment_values(self, role, now, source, **extra):
        self.ensure_one()
        return {
            "call_id": self.id,
            "role": role,
            "partner_id": self._partner_of(role).id,
            "start": now,
            "last_seen": now,
            "source": source,
            **extra,
        }

    def _open_chat_segments(self, role):
        """Start the chat time of ``role`` on these calls, unless it is already running.

        :return: the sessions that started with it
        """
        now = fields.Datetime.now()
        values = [
            call._prepare_segment_values(role, now, source="chat")
            for call in self.sudo()
            if not call.segment_ids.filtered(lambda s, r=role: s.role == r and not s.end)
        ]
        segments = self.env["bookconnect.call.segment"].sudo().create(values)
        return segments.call_id._started_sessions()

    def _chat_presence(self, partner):
        """``partner`` shows up in a chat (writes or reads it): when they are the client of an
        open chat session, their time starts."""
        self.filtered(
            lambda c: c.session_id.chat_open and partner and partner == c.client_id
        )._open_chat_segments("client")

    # External video service

    @api.model
    def _check_event_time(self, at):
        """Refuse an event dated in the future (beyond ``FUTURE_SKEW`` of clock difference).

        :param at: when the event happened (naive UTC datetime, or its string)
        :raise ValidationError: when ``at`` is later than the server's clock allows
        """
        at = fields.Datetime.to_datetime(at)
        now = fields.Datetime.now()
        if at > now + FUTURE_SKEW:
            raise ValidationError(
                _(
                    "A call event dated %(at)s UTC has not happened yet: events are accepted"
                    " up to %(skew)s minutes after the server's time (%(now)s UTC).",
                    at=fields.Datetime.to_string(at),
                    skew=int(FUTURE_SKEW.total_seconds() // 60),
                    now=fields.Datetime.to_string(now),
                )
            )

    def _check_external_event(self, kind, role, at):
        """Whether this call takes an external ``kind`` event of ``role`` dated ``at``.

        :raise ValidationError: the event is not about this session (far outside its slot,
            or in the future)
        :raise UserError: the session takes no more events (it is over), or the client may
            not start it yet (prepaid minimum)
        """
        self.ensure_one()
        session = self.session_id
        at = fields.Datetime.to_datetime(at)
        if session.state not in OPEN_STATES:
            raise UserError(
                _(
                    "Session %(name)s is %(state)s: it takes no more call events.",
                    name=session.name,
                    state=session.state,
                )
            )
        if not session.start - SLOT_MARGIN <= at <= session.stop + SLOT_MARGIN:
            raise ValidationError(
                _(
                    "The event is far outside the booked time of session %(name)s.",
                    name=session.name,
                )
            )
        self._check_event_time(at)
        if kind == "joined" and role == "client":
            self._check_can_start()

    def _record_external_event(self, event_uid, kind, role, at):
        """Check one external join/leave event, store it and rebuild the segments.

        :return: ``True`` when recorded, ``False`` when this event id was already recorded.
        :raise ValidationError, UserError: as :meth:`_check_external_event` (nothing is
            recorded)
        """
        self.ensure_one()
        self._check_external_event(kind, role, at)
        Event = self.env["bookconnect.call.event"]
        recorded = [("call_id", "=", self.id), ("event_uid", "=", event_uid)]
        # A replay of an event already recorded writes nothing, not even the lock: the sweep
        # or an end may be working on the call.
        if Event.search_count(recorded):
            return False
        self._lock()
        if Event.search_count(recorded):
            return False
        Event.create(
            {"call_id": self.id, "event_uid": event_uid, "kind": kind, "role": role, "at": at}
        )
        self._rebuild_external_segments()
        _logger.info("call %s: external %s %s at %s", self.id, role, kind, at)
        return True

    def _rebuild_external_segments(self):
        """Derive the external service's segments from its event log.

        The log is replayed in time order per participant: "joined" opens a connection unless
        one is open, "left" closes the open one; a "left" with nothing open is ignored. Replaying
        makes the result independent of the order and number of times events arrived.
        """
        self._lock()
        segments = self.env["bookconnect.call.segment"]
        segments.search([("call_id", "in", self.ids), ("source", "=", "external")]).unlink()
        events = self.env["bookconnect.call.event"].search(
            [("call_id", "in", self.ids)], order="call_id, role, at, id"
        )
        to_create = []
        open_by_key = {}
        for event in events:
            key = (event.call_id.id, event.role)
            current = open_by_key.get(key)
            if event.kind == "joined" and current is None:
                open_by_key[key] = event.call_id._prepare_segment_values(
                    event.role, event.at, source="external", external_event_id=event.event_uid
                )
            elif event.kind == "left" and current is not None:
                current["end"] = event.at
                current["end_event_id"] = event.event_uid
                to_create.append(open_by_key.pop(key))
        to_create.extend(open_by_key.values())
        segments.create(to_create)

    def _replay_external_events(self, events):
        """Record a list of external events ``(event id, kind, role, minutes after the start)``
        on one call, as the video service would post them (demo data, support scripts).

        :return: the sessions that started with them
        """
        self.ensure_one()
        for uid, kind, role, minutes in events:
            self._record_external_event(
                uid, kind, role, self.session_id.start + timedelta(minutes=minutes)
            )
        return self._started_sessions()

    # Ending

    @api.model
    def _sweep_candidates(self, limit=None):
        """Sessions whose call is over, oldest scheduled end first: both participants gone
        for the company's delay, or still open long after the scheduled end. Dead Discuss
        connections are collected first, so that they count as gone.

        :return: ``bookconnect.therapy.session`` records (at most ``limit``)
        """
        self._collect_dead_discuss_sessions()
        now = fields.Datetime.now()
        domain = []
        for company in self.env["res.company"].sudo().search([]):
            gone_before = now - timedelta(minutes=company.bookconnect_auto_end_minutes)
            overdue_before = now - timedelta(minutes=company.bookconnect_overdue_end_minutes)
            domain.append(
                [
                    ("company_id", "=", company.id),
                    ("state", "=", "in_progress"),
                    "|",
                    "&",
                    ("call_id.live", "=", False),
                    ("call_id.last_activity_at", "<", gone_before),
                    ("stop", "<", overdue_before),
                ]
            )
        sessions = self.env["bookconnect.therapy.session"].sudo()
        if not domain:
            return sessions
        return sessions.search(expression.OR(domain), limit=limit, order="stop, id")
