"""The access matrix over the wire: what each role reads and writes through JSON-RPC (as the
web client and integrations do) and which portal pages it opens over HTTP, on a real server.

The same table as the ORM matrix of the addon's tests
(``bookconnect_therapy/tests/access_table.py``): therapist A (the session's), therapist
B, the practice manager, an accountant, portal client X (the session's), portal client Y and a
public visitor; session, call, segment, billing policy, invoice, payment transaction, saved
card. Plus: accountants see invoices but no clinical detail, and the calendar event of a session
is private to its therapist.
"""

import importlib.util
import secrets
from pathlib import Path

import pytest
from conftest import ACCOUNTANT, MANAGER
from harness import RpcError, record_reliability


def _load_access_table():
    """The addon's access table, loaded by its path: the addon package needs Odoo."""
    path = Path(__file__).parents[1] / "bookconnect_therapy" / "tests" / "access_table.py"
    spec = importlib.util.spec_from_file_location("bookconnect_access_table", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_table = _load_access_table()
R, W, READS, MATRIX, writes_for = _table.R, _table.W, _table.READS, _table.MATRIX, _table.writes_for
LOGINS = {
    "therapist A": ("therapist", "therapist"),
    "therapist B": ("therapist2", "therapist2"),
    "practice manager": MANAGER,
    "accountant": ACCOUNTANT,
    "portal client X": ("client", "client"),
    "portal client Y": ("client2", "client2"),
    "public visitor": None,
}


class Checks:
    """Counts access checks and keeps the ones that did not go as expected."""

    def __init__(self):
        self.run = 0
        self.failures = []

    def expect(self, label, expected, got):
        self.run += 1
        if expected != got:
            self.failures.append(f"{label}: expected {expected}, got {got}")

    def record(self):
        record_reliability("access", run=self.run, passed=self.run - len(self.failures))
        assert not self.failures, "\n".join(self.failures)


@pytest.fixture(scope="module")
def records(practice):
    session = practice.session
    return {
        "session": ("bookconnect.therapy.session", session["id"]),
        "call": ("bookconnect.metered.call", session["call_id"][0]),
        "segment": ("bookconnect.call.segment", session["segment_ids"][0]),
        "policy": ("bookconnect.billing.policy", practice.policy),
        "invoice": ("account.move", session["invoice_id"][0]),
        "transaction": ("payment.transaction", session["transaction_ids"][0]),
        "saved card": ("payment.token", practice.token["id"]),
    }


@pytest.fixture(scope="module")
def rpc(practice):
    """JSON-RPC as each role; the public visitor calls the web client's route unsigned in."""
    server = practice.stack.server
    clients = {}
    for role, login in LOGINS.items():
        if login:
            clients[role] = server.rpc(*login)
        else:
            web = server.web()
            clients[role] = lambda model, method, *args, _web=web: _web.json(
                "/web/dataset/call_kw", model=model, method=method, args=list(args), kwargs={}
            )
    return clients


@pytest.fixture(scope="module")
def web(practice):
    """A browser session as each role (logged in through the login form's JSON route)."""
    server = practice.stack.server
    return {role: server.web(*login) if login else server.web() for role, login in LOGINS.items()}


def allowed(call, model, method, *args):
    """True when Odoo does it, False when it refuses with an access error (or, for the
    public visitor, asks to sign in); anything else is a failure of the test."""
    try:
        call(model, method, *args)
    except RpcError as exc:
        if exc.name in ("odoo.exceptions.AccessError", "odoo.http.SessionExpiredException"):
            return False
        raise
    return True


def test_matrix_over_json_rpc(rpc, records):
    checks = Checks()
    for role, rights in MATRIX.items():
        for kind, (read, write) in rights.items():
            model, record_id = records[kind]
            checks.expect(
                f"{role} {R} {kind}",
                bool(read),
                allowed(rpc[role], model, "read", [record_id], READS[kind]),
            )
            values = writes_for(kind, records["session"][1])
            checks.expect(
                f"{role} {W} {kind}",
                bool(write),
                allowed(rpc[role], model, "write", [record_id], values),
            )
    checks.record()


def test_portal_pages_over_http(practice, web):
    session, theirs = practice.session, practice.their_session
    invoice_id = session["invoice_id"][0]
    guess = secrets.token_hex(16)
    everyone = set(LOGINS)
    # path -> roles that get the page (200); the others are sent away (303) or told it does
    # not exist (404), never shown it.
    pages = {
        f"/my/sessions/{session['id']}": {"portal client X", "therapist A", "practice manager"},
        f"/my/invoices/{invoice_id}": {"portal client X", "accountant"},
        f"/my/sessions/{session['id']}?access_token={guess}": {
            "portal client X",
            "therapist A",
            "practice manager",
        },
        f"/my/invoices/{invoice_id}?access_token={guess}": {"portal client X", "accountant"},
        f"/my/sessions/{theirs['id']}": {"portal client Y", "therapist B", "practice manager"},
        f"/my/sessions/{theirs['id']}/cancel": {"portal client Y"},
        f"/my/sessions/{session['id']}/cancel": set(),
        f"/my/sessions/{session['id']}/card": set(),
    }
    checks = Checks()
    for path, readers in pages.items():
        for role in everyone:
            response = web[role].get(path, allow_redirects=False)
            shown = response.status_code == 200
            checks.expect(f"{role} GET {path}", role in readers, shown)
            if not shown:
                checks.expect(
                    f"{role} GET {path} refused", True, response.status_code in (303, 404)
                )
    # The list of "My sessions" shows a client their own sessions only.
    page = web["portal client Y"].get("/my/sessions").text
    checks.expect("client Y's list shows X's session", False, session["name"] in page)
    checks.expect("client Y's list shows their own", True, theirs["name"] in page)
    # The session's own token opens it read-only for whoever holds the link (emails).
    with_token = web["public visitor"].get(
        f"/my/sessions/{session['id']}?access_token={session['access_token']}",
        allow_redirects=False,
    )
    checks.expect("the session's link opens it", 200, with_token.status_code)
    checks.record()


def test_accountants_see_invoices_not_clinical_detail_and_events_are_private(practice, rpc):
    session = practice.session
    checks = Checks()
    accountant = rpc["accountant"]
    [invoice] = accountant(
        "account.move", "read", [session["invoice_id"][0]], ["name", "invoice_line_ids"]
    )
    lines = accountant("account.move.line", "read", invoice["invoice_line_ids"], ["name"])
    checks.expect(
        "the accountant reads the invoice, no clinical word on it",
        False,
        any("sleep" in (line["name"] or "") for line in lines),
    )
    fields = accountant("account.move", "fields_get", [], ["string"])
    checks.expect(
        "the invoice shows the accountant its session", False, "bookconnect_session_id" in fields
    )
    for model, record_id, names in [
        ("bookconnect.therapy.session", session["id"], ["note"]),
        ("bookconnect.call.segment", session["segment_ids"][0], ["start", "end"]),
        ("bookconnect.metered.call", session["call_id"][0], ["billable_seconds"]),
    ]:
        checks.expect(
            f"the accountant reads {model} {names}",
            False,
            allowed(accountant, model, "read", [record_id], names),
        )
    checks.expect(
        "the accountant lists call events",
        False,
        allowed(accountant, "bookconnect.call.event", "search_read", [], ["at"]),
    )
    checks.expect(
        "therapist B reads the notes",
        False,
        allowed(
            rpc["therapist B"], "bookconnect.therapy.session", "read", [session["id"]], ["note"]
        ),
    )
    [note] = rpc["therapist A"]("bookconnect.therapy.session", "read", [session["id"]], ["note"])
    checks.expect("therapist A reads the notes", True, "sleep" in note["note"])

    # The session's calendar event: details for its therapist, "Busy" for everyone else.
    event_id = session["calendar_event_id"][0]
    client_name = practice.stack.admin.read("res.partner", practice.client_x, ["name"])["name"]
    fields = ["name", "partner_ids", "videocall_location", "description"]
    [own] = rpc["therapist A"]("calendar.event", "read", [event_id], fields)
    checks.expect("therapist A sees the client on the event", True, client_name in own["name"])
    for role in ("therapist B", "accountant", "practice manager"):
        [seen] = rpc[role]("calendar.event", "read", [event_id], fields)
        checks.expect(f"{role} reads the event's name", "Busy", seen["name"])
        checks.expect(f"{role} sees the client", False, practice.client_x in seen["partner_ids"])
        checks.expect(f"{role} gets the video link", False, bool(seen["videocall_location"]))
    checks.record()
