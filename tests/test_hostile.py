"""Hostile input against the running server, generated with hypothesis.

The call-events endpoint gets malformed JSON, bodies of the wrong shape and types, bodies too
large, unknown tokens, stale, future-dated, forged and replayed signatures, signed events dated
in the future, and SQL or HTML injection strings; the portal's forms (booking and sign-up,
cancelling a session) get the same strings in every field, other clients' sessions and made-up
ids.

Every answer must be a clean refusal: a 4xx, or for a form the page again with its message
(or a redirection to where the visitor should be), never a server error nor a traceback, and
no unescaped markup of ours reflected. Nothing is written (rows are counted before and after)
and the server still answers its health check afterwards.
"""

import json
import re
import secrets
import time
from collections import Counter
from datetime import timedelta
from urllib.parse import quote

import pytest
import requests
from harness import record_reliability
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import html as lxml_html
from stripe_stack import call_event_body, sign_call_event, utcnow

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    database=None,  # no example database written into the checkout
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
INJECTIONS = [
    "'; DROP TABLE bookconnect_call_event; --",
    "' OR '1'='1",
    "1; SELECT pg_sleep(5)",
    '" OR 1=1 --',
    "<script>alert('bookconnect')</script>",
    "<img src=x onerror=alert(1)>",
    "{{7*7}}",
    "${7*7}",
    "../../../../etc/passwd",
    "%00",
    "\x00",
    "\u202e\u0000\ufeff",
    "A" * 5000,
]
MARKUP = ("<script>alert('bookconnect')</script>", "<img src=x onerror=alert(1)>")
TRACEBACK = re.compile(r"Traceback \(most recent call last\)|File \"/[^\"]+\.py\", line \d+")
# What a text field may receive: injection strings and anything else.
hostile_text = st.one_of(st.sampled_from(INJECTIONS), st.text(max_size=300))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | hostile_text,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3)
    ),
    max_leaves=6,
)

TRIED = Counter()


class Tally:
    """Counts the inputs tried and refused cleanly; fails on anything else."""

    def __init__(self, kind):
        self.kind = kind

    def check(self, response, allowed):
        TRIED[(self.kind, "tried")] += 1
        body = response.text
        assert response.status_code in allowed, (response.status_code, body[:300])
        assert not TRACEBACK.search(body), body[:1000]
        for markup in MARKUP:
            assert markup not in body, f"{markup} reflected unescaped"
        TRIED[(self.kind, "refused")] += 1


@pytest.fixture(scope="module", autouse=True)
def figures():
    yield
    tried = sum(n for (_kind, what), n in TRIED.items() if what == "tried")
    refused = sum(n for (_kind, what), n in TRIED.items() if what == "refused")
    record_reliability("hostile", tried=tried, refused=refused)


@pytest.fixture(scope="module")
def open_session(practice):
    """The second therapist's session, still open for events (it started 40 minutes ago)."""
    session = practice.their_session
    stack = practice.stack
    stack.admin.read("bookconnect.therapy.session", session["id"], ["state"])
    return session


def counts(stack, *models):
    admin = stack.admin
    domain_for = {"res.users": [("active", "in", (True, False))]}
    return {
        model: admin(
            model, "search_count", domain_for.get(model, []), context={"active_test": False}
        )
        for model in models
    }


@pytest.fixture
def nothing_written(practice):
    """Rows of the tables hostile input could write to, the same after the test; and the
    server healthy and without errors in its log."""
    stack = practice.stack
    models = (
        "bookconnect.call.event",
        "bookconnect.call.segment",
        "bookconnect.therapy.session",
        "res.users",
        "res.partner",
        "mail.mail",
    )
    before = counts(stack, *models)
    mark = stack.log_mark()
    yield
    assert counts(stack, *models) == before
    health = requests.get(f"{stack.server.url}/web/health", timeout=30)
    assert health.status_code == 200 and health.json()["status"] == "pass"
    assert not stack.log_problems(mark)


# ------------------------------------------------------------------------------------------
# The call-events endpoint
# ------------------------------------------------------------------------------------------

VALID_KEYS = ("id", "event", "participant", "at")


def is_valid_event(payload, session):
    """Whether the endpoint must accept ``payload`` (then it is not hostile input)."""
    if not isinstance(payload, dict) or set(payload) != set(VALID_KEYS):
        return False
    uid, kind, who, at = (payload[k] for k in VALID_KEYS)
    if not (isinstance(uid, str) and uid.strip() and len(uid) <= 200 and uid.isprintable()):
        return False
    if kind not in ("joined", "left") or who not in ("therapist", "client"):
        return False
    return isinstance(at, str)  # the date checks are the server's: treat as possibly valid


@st.composite
def wrong_events(draw):
    """A call event with at least one key missing, unknown, or of the wrong type or value."""
    good = {
        "id": f"hostile-{draw(st.integers(0, 10**9))}",
        "event": "joined",
        "participant": "client",
        "at": "2026-11-27T10:00:00Z",
    }
    payload = dict(good)
    for key in draw(st.lists(st.sampled_from(VALID_KEYS), min_size=1, unique=True)):
        if draw(st.booleans()):
            payload[key] = draw(json_values)
        else:
            payload.pop(key)
    extra = draw(st.dictionaries(st.text(max_size=20), json_values, max_size=2))
    payload.update({k: v for k, v in extra.items() if k not in VALID_KEYS})
    return payload


@SETTINGS
@given(payload=wrong_events())
def test_call_events_wrong_shapes_and_types(practice, open_session, nothing_written, payload):
    if is_valid_event(payload, open_session):
        payload["event"] = "waved"
    body = json.dumps(payload).encode()
    response = practice.stack.post_call_event(open_session["access_token"], body)
    Tally("call events").check(response, (400, 413))


@SETTINGS
@given(body=st.one_of(st.binary(max_size=600), hostile_text.map(str.encode)))
def test_call_events_malformed_bodies(practice, open_session, nothing_written, body):
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if payload is not None and is_valid_event(payload, open_session):
        return  # not malformed
    response = practice.stack.post_call_event(open_session["access_token"], body)
    Tally("call events").check(response, (400, 413))


@SETTINGS
@given(
    token=st.one_of(
        st.text(min_size=1, max_size=80),
        st.sampled_from(INJECTIONS[:9]),
        st.text(alphabet="0123456789abcdef", min_size=32, max_size=32),
    )
)
def test_call_events_unknown_tokens(practice, open_session, nothing_written, token):
    if token == open_session["access_token"]:
        return
    body = call_event_body("hostile-token", "joined", "client", utcnow())
    response = practice.stack.post_call_event(quote(token, safe=""), body)
    Tally("call events").check(response, (400, 404, 405))


@SETTINGS
@given(
    # Beyond the 5-minute window by a margin that a slow request cannot eat up.
    age=st.one_of(st.integers(360, 10**8), st.integers(-(10**8), -360)),
    header=st.one_of(st.none(), st.text(max_size=120), st.sampled_from(INJECTIONS)),
    secret=st.sampled_from(["", "not-the-secret", "e2e-call-secret "]),
)
def test_call_events_bad_signatures(practice, open_session, nothing_written, age, header, secret):
    """Stale (a replay) or future-dated signatures, signatures with the wrong secret, and
    headers that are not signatures at all."""
    stack = practice.stack
    body = call_event_body("hostile-signature", "joined", "client", utcnow())
    token = open_session["access_token"]
    Tally("signatures").check(
        stack.post_call_event(token, body, sign_call_event(body, timestamp=time.time() - age)),
        (401,),
    )
    Tally("signatures").check(
        stack.post_call_event(token, body, sign_call_event(body, secret=secret)), (401,)
    )
    # What an HTTP header can carry: one line of latin-1 text.
    header = "".join(c for c in (header or "") if c.isprintable() and ord(c) < 256).strip()
    if header:
        Tally("signatures").check(stack.post_call_event(token, body, header), (401,))


@SETTINGS
@given(
    # Beyond the 2 minutes of clock difference tolerated by a margin that a slow request cannot
    # eat up, and within the session's slot (an event further away is refused for that).
    ahead=st.integers(4 * 60, 11 * 3600),
    kind=st.sampled_from(["joined", "left"]),
    who=st.sampled_from(["therapist", "client"]),
)
def test_call_events_from_the_future(practice, open_session, nothing_written, ahead, kind, who):
    """Signed, well-formed events dated after the server's clock: they have not happened."""
    at = utcnow() + timedelta(seconds=ahead)
    body = call_event_body(f"hostile-future-{ahead}", kind, who, at)
    response = practice.stack.post_call_event(open_session["access_token"], body)
    Tally("call events").check(response, (400,))
    assert "has not happened yet" in response.json()["error"]


def test_call_events_huge_bodies_and_replays(practice, open_session):
    stack = practice.stack
    token = open_session["access_token"]
    # Too large: declared, or streamed without a length.
    for size in (4097, 64 * 1024, 2 * 1024 * 1024):
        body = b'{"id": "' + b"x" * size + b'"}'
        Tally("call events").check(stack.post_call_event(token, body), (413,))
    chunks = (b"x" * 8192 for _ in range(64))
    response = requests.post(
        f"{stack.server.url}/bookconnect/calls/{token}/events",
        data=chunks,
        headers={"Content-Type": "application/json", "X-BookConnect-Signature": "t=1,v1=0"},
        timeout=60,
    )
    Tally("call events").check(response, (413,))

    # A genuine event, then the same request replayed: recorded once, nothing more.
    body = call_event_body("replayed-1", "joined", "therapist", utcnow() - timedelta(minutes=1))
    signature = sign_call_event(body)
    assert stack.post_call_event(token, body, signature).json()["status"] == "recorded"
    before = counts(stack, "bookconnect.call.event", "bookconnect.call.segment")
    for _replay in range(5):
        response = stack.post_call_event(token, body, signature)
        Tally("replays").check(response, (200,))
        assert response.json()["status"] == "duplicate"
    # The same signature on another body is refused.
    other = call_event_body("replayed-2", "left", "therapist", utcnow())
    Tally("replays").check(stack.post_call_event(token, other, signature), (401,))
    assert counts(stack, "bookconnect.call.event", "bookconnect.call.segment") == before


# ------------------------------------------------------------------------------------------
# Portal forms
# ------------------------------------------------------------------------------------------


def form_of(page, path_part):
    """The hidden fields of the form posting to ``path_part`` in ``page`` (HTML text)."""
    tree = lxml_html.fromstring(page)
    [form] = [f for f in tree.xpath("//form[@method='post']") if path_part in f.get("action", "")]
    return {i.get("name"): i.get("value") for i in form.xpath(".//input[@type='hidden']")}


@pytest.fixture(scope="module")
def booking(practice):
    """A visitor's browser on the confirmation page of a free slot: (web, path, hidden
    fields of its form)."""
    server = practice.stack.server
    visitor = server.web()
    slots = lxml_html.fromstring(visitor.get("/book").text)
    therapist_link = slots.xpath("//a[starts-with(@href, '/book/')]/@href")[0]
    page = lxml_html.fromstring(visitor.get(therapist_link).text)
    confirm = page.xpath("//a[contains(@class, 'o_bookconnect_slot')]/@href")[0]
    confirm_page = visitor.get(confirm)
    assert confirm_page.status_code == 200
    path = confirm.split("?")[0]
    return visitor, path, form_of(confirm_page.text, "/confirm")


@st.composite
def bad_signups(draw):
    """Name, email and password of which at least one is not acceptable."""
    name = draw(st.one_of(hostile_text, st.sampled_from(["", "   "])))
    email = draw(
        st.one_of(
            hostile_text.filter(lambda text: "@" not in text),
            st.sampled_from(["jamie.clarke@example.com", "a@", "@b.c", "no-at-sign"]),
        )
    )
    password = draw(st.one_of(st.text(max_size=7), st.sampled_from(INJECTIONS[:4])))
    weakest = draw(st.sampled_from(["name", "email", "password"]))
    if weakest == "name":
        # Only the name is wrong: blank, or with control characters (NUL cannot be stored).
        name = draw(st.sampled_from(["", "   ", "Jo\x00e", "Jo\ne", "\u202eeoJ", "Jo\x1be"]))
        email = f"new-{draw(st.integers(0, 10**6))}@example.com"
        password = "a long enough password"
    elif weakest == "password":
        password = draw(st.text(max_size=7))
    return {"name": name, "email": email, "password": password}


@SETTINGS
@given(signup=bad_signups())
def test_booking_signup_with_bad_fields(practice, booking, nothing_written, signup):
    visitor, path, hidden = booking
    response = visitor.post(path, data={**hidden, **signup}, allow_redirects=False)
    Tally("portal forms").check(response, (200, 303, 400))
    if response.status_code == 200:
        assert "o_bookconnect_error" in response.text, "the form came back without a message"


@SETTINGS
@given(start=hostile_text, extra=st.dictionaries(st.text(max_size=10), hostile_text, max_size=3))
def test_booking_with_a_made_up_start(practice, booking, nothing_written, start, extra):
    visitor, path, hidden = booking
    data = {**extra, **hidden, "start": start, "name": "Valid Name", "password": "x" * 12}
    data["email"] = "not-an-email"
    response = visitor.post(path, data=data, allow_redirects=False)
    Tally("portal forms").check(response, (200, 303, 400))


@pytest.fixture(scope="module")
def late_session(practice):
    """A session of the demo client starting within the hour: cancelling it now is late."""
    stack = practice.stack
    start = utcnow().replace(second=0) + timedelta(minutes=45)
    session = stack.book(practice.client_x, practice.policy, start)
    web = stack.server.web("client", "client")
    page = web.get(f"/my/sessions/{session['id']}/cancel")
    assert page.status_code == 200
    assert "o_bookconnect_cancel_consequence" in page.text
    # Made-up ids must not hit the client's own sessions (cancelling those is allowed).
    own = set(
        stack.admin(
            "bookconnect.therapy.session", "search", [("partner_id", "=", practice.client_x)]
        )
    )
    return web, session, form_of(page.text, "/cancel"), own


@SETTINGS
@given(
    confirm=st.one_of(st.none(), hostile_text.filter(lambda text: text != "1")),
    target=st.sampled_from(["own", "other client's", "made up", "not a number"]),
    made_up=st.integers(min_value=-(2**63), max_value=2**63),
)
def test_cancel_form(practice, late_session, nothing_written, confirm, target, made_up):
    web, session, hidden, own = late_session
    if target == "made up" and made_up in own:
        made_up = -made_up - 1
    session_id = {
        "own": session["id"],
        "other client's": practice.their_session["id"],
        "made up": made_up,
        "not a number": "x" + quote(str(confirm or ""), safe=""),
    }[target]
    data = {name: value for name, value in hidden.items() if name != "confirm_late"}
    if confirm is not None:
        data["confirm_late"] = confirm
    response = web.post(f"/my/sessions/{session_id}/cancel", data=data, allow_redirects=False)
    if target == "own":
        # The late fee the client was shown is not the one confirmed: shown again, not cancelled.
        Tally("portal forms").check(response, (200,))
    else:
        Tally("portal forms").check(response, (400, 404))


def test_forms_without_the_csrf_token(practice, booking, late_session, nothing_written):
    visitor, path, hidden = booking
    data = {**hidden, "csrf_token": secrets.token_hex(20), "name": "A", "email": "a@b.c"}
    Tally("portal forms").check(visitor.post(path, data=data, allow_redirects=False), (400,))
    web, session, _hidden, _own = late_session
    response = web.post(
        f"/my/sessions/{session['id']}/cancel",
        data={"confirm_late": "1"},
        allow_redirects=False,
    )
    Tally("portal forms").check(response, (400,))
