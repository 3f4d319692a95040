import logging
from collections import defaultdict
from datetime import timedelta

from odoo import _, api, fields, models
from odoo.exceptions import ValidationError
from odoo.tools import SQL

from ..core import total_seconds, union
from ..core.intervals import intersect

_logger = logging.getLogger(__name__)

ROLES = [("therapist", "Therapist"), ("client", "Client")]
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
    corrected_minutes = fields.Integer(readonly=True, copy=False)
    correction_reason = fields.Char(readonly=True, copy=False)
    corrected_by_id = fields.Many2one("res.users", readonly=True, copy=False)

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
                open_by_key[key] = {
                    "call_id": event.call_id.id,
                    "role": event.role,
                    "partner_id": event.call_id.session_id._participant_partner(event.role).id,
                    "start": event.at,
                    "last_seen": event.at,
                    "source": "external",
                    "external_event_id": event.event_uid,
                }
            elif event.kind == "left" and current is not None:
                current["end"] = event.at
                current["end_event_id"] = event.event_uid
                to_create.append(open_by_key.pop(key))
        to_create.extend(open_by_key.values())
        segments.create(to_create)
        self._mark_sessions_in_progress()

    def _mark_sessions_in_progress(self):
        sessions = self.session_id.filtered(
            lambda s: s.state == "scheduled" and s.call_id.segment_ids
        )
        sessions.with_context(bookconnect_sync=True).write({"state": "in_progress"})

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
        quiet_before = now - timedelta(minutes=1)
        for segment in open_segments:
            if segment.source == "discuss":
                beat = heartbeats.get(segment.rtc_session_id) or segment.last_seen
                end = beat if automatic or (beat and beat < quiet_before) else now
            else:
                end = min(now, segment.session_id.stop) if automatic else now
            end = max(end or now, segment.start)
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

    def _record_external_event(self, event_uid, kind, role, at):
        """Store one external join/leave event and rebuild the segments.

        :return: ``True`` when recorded, ``False`` when this event id was already recorded.
        :raise ValidationError: when the event is dated in the future (nothing is recorded)
        """
        self.ensure_one()
        self._check_event_time(at)
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

    def _correct(self, minutes, reason):
        """Record the current user's correction of the measured time, and why: the time billed
        from now on (see the session's pricing).

        :return: the minutes counted before (the previous correction, else the measurement).
        :raise ValidationError: for negative minutes or without a reason.
        """
        self.ensure_one()
        if minutes < 0:
            raise ValidationError(_("Corrected minutes cannot be negative."))
        if not (reason or "").strip():
            raise ValidationError(_("Say why the measured time is corrected."))
        before = (
            self.corrected_minutes if self.corrected_by_id else round(self.billable_seconds / 60, 1)
        )
        self.write(
            {
                "corrected_minutes": minutes,
                "correction_reason": reason.strip(),
                "corrected_by_id": self.env.user.id,
            }
        )
        return before

    def _summary(self):
        self.ensure_one()
        return _(
            "%(together)s min together (therapist %(therapist)s min, client %(client)s min)",
            together=round(self.billable_seconds / 60, 1),
            therapist=round(self.therapist_seconds / 60, 1),
            client=round(self.client_seconds / 60, 1),
        )
