import hashlib
import hmac
import json
import time
from datetime import datetime, timedelta, timezone

from odoo import http
from odoo.exceptions import UserError, ValidationError
from odoo.http import request

SIGNATURE_HEADER = "X-BookConnect-Signature"
MAX_BODY_BYTES = 4096
MAX_AGE_SECONDS = 300
EVENT_KINDS = ("joined", "left")
PARTICIPANTS = ("therapist", "client")


class BadRequest(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


def compute_signature(secret, timestamp, body):
    """Hex HMAC-SHA256 of ``"<timestamp>.<body>"`` with ``secret`` (``body`` as bytes)."""
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def verify_signature(secret, header, body, now=None):
    """Check an ``X-BookConnect-Signature: t=<unix seconds>,v1=<hex>`` header.

    :raise BadRequest: (401) when the header is missing, malformed, wrong, or older or newer
        than five minutes (a replay or a clock far off).
    """
    if not header:
        raise BadRequest(401, f"missing {SIGNATURE_HEADER} header")
    timestamp, signatures = None, []
    for part in header.split(","):
        key, _sep, value = part.strip().partition("=")
        if key == "t":
            timestamp = value
        elif key == "v1":
            signatures.append(value)
    if not timestamp or not timestamp.isdigit() or not signatures:
        raise BadRequest(401, "malformed signature header")
    now = time.time() if now is None else now
    if abs(now - int(timestamp)) > MAX_AGE_SECONDS:
        raise BadRequest(401, "stale signature (older or newer than 5 minutes)")
    expected = compute_signature(secret, timestamp, body)
    if not any(hmac.compare_digest(expected, candidate) for candidate in signatures):
        raise BadRequest(401, "bad signature")


def parse_event(body):
    """Validate a call event body; return ``(event_id, kind, participant, at)``.

    ``at`` is returned as a naive UTC datetime, as Odoo stores them.

    :raise BadRequest: (400) on anything else than the documented JSON object.
    """
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadRequest(400, "the body is not JSON") from exc
    if not isinstance(payload, dict):
        raise BadRequest(400, "the body must be a JSON object")
    unknown = set(payload) - {"id", "event", "participant", "at"}
    if unknown:
        raise BadRequest(400, f"unknown keys: {', '.join(sorted(map(str, unknown)))}")
    event_id = payload.get("id")
    if not isinstance(event_id, str) or not event_id.strip() or len(event_id) > 200:
        raise BadRequest(400, '"id" must be a non-empty string of at most 200 characters')
    if not event_id.isprintable():
        raise BadRequest(400, '"id" must be printable text')
    kind = payload.get("event")
    if kind not in EVENT_KINDS:
        raise BadRequest(400, '"event" must be "joined" or "left"')
    participant = payload.get("participant")
    if participant not in PARTICIPANTS:
        raise BadRequest(400, '"participant" must be "therapist" or "client"')
    at_text = payload.get("at")
    if not isinstance(at_text, str) or len(at_text) > 40:
        raise BadRequest(400, '"at" must be an ISO 8601 date-time string')
    try:
        at = datetime.fromisoformat(at_text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadRequest(400, '"at" is not an ISO 8601 date-time') from exc
    if at.tzinfo is None or at.utcoffset() != timedelta(0):
        raise BadRequest(400, '"at" must be in UTC (end it with Z or +00:00)')
    return event_id.strip(), kind, participant, at.astimezone(timezone.utc).replace(tzinfo=None)


class CallEventsController(http.Controller):
    @http.route(
        "/bookconnect/calls/<string:token>/events",
        type="http",
        auth="public",
        methods=["POST"],
        csrf=False,
        save_session=False,
    )
    def call_event(self, token, **_kwargs):
        """Record a join or leave event from an external video service (see the README)."""
        try:
            status, payload = self._handle_call_event(token)
        except BadRequest as exc:
            status, payload = exc.status, {"error": exc.message}
        return request.make_json_response(payload, status=status)

    def _handle_call_event(self, token):
        httprequest = request.httprequest
        if (httprequest.content_length or 0) > MAX_BODY_BYTES:
            raise BadRequest(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
        # Kept on the request (werkzeug caches it): after a serialization failure Odoo runs
        # this handler again, and the input stream can be read only once.
        body = httprequest.get_data()
        if len(body) > MAX_BODY_BYTES:
            raise BadRequest(413, f"the body is larger than {MAX_BODY_BYTES} bytes")
        if len(token) != 32 or not all(c in "0123456789abcdef" for c in token):
            raise BadRequest(404, "unknown session")
        # sudo: the caller is an outside service; the unguessable token identifies the session
        # and the signature below proves the caller holds the practice's secret.
        session_sudo = (
            request.env["bookconnect.therapy.session"]
            .sudo()
            .search([("access_token", "=", token)], limit=1)
        )
        if not session_sudo:
            raise BadRequest(404, "unknown session")
        secret = session_sudo.company_id.bookconnect_call_secret
        if not secret:
            raise BadRequest(401, "call events are refused: no call-events secret is configured")
        verify_signature(secret, httprequest.headers.get(SIGNATURE_HEADER), body)
        event_id, kind, participant, at = parse_event(body)
        try:
            recorded = session_sudo.call_id._record_external_event(event_id, kind, participant, at)
        except ValidationError as exc:
            raise BadRequest(400, str(exc)) from exc
        except UserError as exc:
            # Over, or not to be started yet: the request is fine, the session refuses it.
            raise BadRequest(409, str(exc)) from exc
        session_sudo.call_id._started_sessions()._mark_in_progress()
        return 200, {"status": "recorded" if recorded else "duplicate", "id": event_id}
