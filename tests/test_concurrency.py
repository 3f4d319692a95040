"""Concurrency on a real multi-process server: many clients at once, nothing lost or doubled.

Odoo runs with two HTTP worker processes and a cron worker (``--workers=2
--max-cron-threads=1``) on its own database, charging saved cards on the fake Stripe. Twelve
client threads on 127.0.0.1 post signed call events for three dozen sessions (shuffled, a third
of them sent twice, some at the same moment from two threads), therapists and the practice
manager end sessions (each one three times, from different threads) while the cron worker runs
the sweep, which ends the sessions whose calls are over.

Afterwards, on both sides: every session is ended with exactly one posted invoice, paid once
(one done transaction and one payment per invoice, one PaymentIntent per transaction at the
fake Stripe and none it does not know about); every event is recorded once; the call segments
are exactly those the events describe and the billable time and amount are what the billing
engine (``bookconnect_therapy/core``, run here on its own) computes from the events sent.
"""

import queue
import random
import threading
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta

import pytest
import requests
from harness import LOG_LINE, RpcError, billing_engine, psql, record_reliability
from stripe_stack import StripeStack, call_event_body, odoo_datetime, utcnow

THREADS = 12
ENDS_PER_SESSION = 3
SWEEP = "bookconnect_therapy.ir_cron_session_sweep"
POST_PROCESS = "payment.cron_post_process_payment_tx"
SWEEP_JOB = "Job 'Therapy: end finished calls and invoice them'"
PHASE_TIMEOUT = 240
# Sessions whose last event is older than this are over for the sweep ("gone" rule).
AUTO_END_MINUTES = 30
USERS = {
    "therapist": "therapist",
    "therapist2": "therapist2",
    "manager": "manager",
}


def no_scheduled_actions(db):
    """Only the sweep will run (enabled by the test once the addon is installed): the other
    scheduled actions (no-shows, reminders, invoice sending...) would act on the test's
    sessions in between."""
    psql(db, "UPDATE ir_cron SET active = false")


@pytest.fixture(scope="module")
def stack():
    # The cron worker wakes as soon as a scheduled action is rescheduled, as it does for
    # triggers: the test reschedules the sweep to run it while requests fly.
    with StripeStack(
        "concurrency",
        workers=2,
        env={"ODOO_NOTIFY_CRON_CHANGES": "1"},
        prepare=no_scheduled_actions,
    ) as running:
        yield running


def rpc_retrying(call, *args, tries=20, **kwargs):
    """An RPC that may meet a scheduled action being run (Odoo refuses to change it then)."""
    for _attempt in range(tries):
        try:
            return call(*args, **kwargs)
        except RpcError as exc:
            if "cannot be modified right now" not in exc.message:
                raise
            time.sleep(0.5)
    raise AssertionError(f"could not change the scheduled action: {args}")


def replay(events, close_at):
    """The segments the events describe, per role, as the product documents it: in time
    order, "joined" opens a connection unless one is open, "left" closes the open one, a "left"
    with nothing open is ignored; connections left open end at ``close_at``."""
    segments = {"therapist": [], "client": []}
    for role, pairs in segments.items():
        current = None
        for _uid, kind, _role, at in sorted(
            (e for e in set(events) if e[2] == role), key=lambda e: e[3]
        ):
            if kind == "joined" and current is None:
                current = at
            elif kind == "left" and current is not None:
                pairs.append((current, at))
                current = None
        if current is not None:
            pairs.append((current, max(close_at, current)))
    return segments


def script(rng, kind, index, start):
    """Events of one session: ``(event id, kind, role, at)``, each ``at`` unique per role.

    ``complete``: both join, the client may drop and come back, the therapist may report a
    second "joined" while connected and the client a stray "left" first, both leave.
    ``no_left``: the therapist's "left" never comes (the sweep closes it at the scheduled end).
    """

    def at(minutes, seconds=0):
        return start + timedelta(minutes=minutes, seconds=seconds)

    tag = f"{kind}{index}"
    client_in = at(rng.randint(1, 3), rng.randint(0, 59))
    client_out = at(rng.randint(18, 23), rng.randint(0, 59))
    events = [
        (f"{tag}-t-in", "joined", "therapist", at(0, rng.randint(0, 50))),
        (f"{tag}-c-in", "joined", "client", client_in),
        (f"{tag}-c-out", "left", "client", client_out),
    ]
    if rng.random() < 0.5:  # the client's connection drops and comes back
        events += [
            (f"{tag}-c-drop", "left", "client", at(10, rng.randint(0, 29))),
            (f"{tag}-c-back", "joined", "client", at(11, rng.randint(0, 59))),
        ]
    if rng.random() < 0.3:  # noise the replay must ignore
        events += [
            (f"{tag}-t-again", "joined", "therapist", at(5, 7)),
            (f"{tag}-c-stray", "left", "client", at(0, 55)),
        ]
    if kind != "no_left":
        events.append((f"{tag}-t-out", "left", "therapist", client_out + timedelta(seconds=41)))
    return events


class Load:
    """The client side: threads, a queue of requests, and what each one answered."""

    def __init__(self, stack, sessions):
        self.stack = stack
        self.sessions = sessions
        self.tasks = queue.Queue()
        self.lock = threading.Lock()
        self.pending = {s["id"]: 0 for s in sessions}
        self.answers = defaultdict(list)  # event id -> statuses ("recorded", ...)
        self.problems = []
        self.requests = 0
        self.ends = Counter()
        self.local = threading.local()

    # The work ------------------------------------------------------------------------------

    def rpc(self, login):
        """This thread's own JSON-RPC connection as ``login``."""
        clients = self.local.__dict__.setdefault("rpc", {})
        if login not in clients:
            clients[login] = self.stack.server.rpc(login, USERS[login])
        return clients[login]

    def post_event(self, session, event, replay=False):
        uid, kind, role, at = event
        response = self.stack.post_call_event(
            session["access_token"], call_event_body(uid, kind, role, at), timeout=120
        )
        with self.lock:
            self.requests += 1
            if response.status_code == 200:
                self.answers[uid].append(response.json()["status"])
            elif not (replay and response.status_code == 409):
                # A replay may find the session already ended (409); nothing else is right.
                self.problems.append(f"{uid}: {response.status_code} {response.text[:200]}")
            if not replay:
                self.pending[session["id"]] -= 1
                ready = self.pending[session["id"]] == 0 and session["ended_by"] == "therapist"
            else:
                ready = False
        if ready:
            # Every event of the session is in: end it, several times, from other threads.
            logins = [session["therapist"], "manager", session["therapist"]]
            for login in logins[:ENDS_PER_SESSION]:
                self.tasks.put(("end", session, login))

    def end(self, session, login):
        try:
            result = self.rpc(login)(
                "bookconnect.therapy.session", "action_end_session", [session["id"]]
            )
            if result is not True:
                raise AssertionError(f"answered {result!r}")
        except (RpcError, AssertionError, requests.RequestException) as exc:
            with self.lock:
                self.problems.append(f"end {session['id']} as {login}: {exc}")
        with self.lock:
            self.requests += 1
            self.ends[session["id"]] += 1

    def worker(self):
        while True:
            task = self.tasks.get()
            try:
                if task is None:
                    return
                kind, *args = task
                if kind == "event":
                    self.post_event(*args)
                elif kind == "replay":
                    self.post_event(*args, replay=True)
                else:
                    self.end(*args)
            except Exception as exc:  # every failure is reported after the run
                with self.lock:
                    self.problems.append(f"{task[0]}: {exc!r}")
            finally:
                self.tasks.task_done()

    # Running -------------------------------------------------------------------------------

    def run(self, tasks, while_running=None, rng=None):
        """Run ``tasks`` (shuffled) on the threads; ``while_running()`` is called every two
        seconds meanwhile. Bounded: fails after PHASE_TIMEOUT seconds."""
        (rng or random).shuffle(tasks)
        for task in tasks:
            if task[0] == "event":
                self.pending[task[1]["id"]] += 1
        threads = [threading.Thread(target=self.worker, daemon=True) for _ in range(THREADS)]
        for thread in threads:
            thread.start()
        for task in tasks:
            self.tasks.put(task)
        done = threading.Event()
        threading.Thread(target=lambda: (self.tasks.join(), done.set()), daemon=True).start()
        deadline = time.monotonic() + PHASE_TIMEOUT
        while not done.wait(2):
            if time.monotonic() > deadline:
                raise AssertionError(f"the load did not finish in {PHASE_TIMEOUT}s")
            if while_running:
                while_running()
        for _thread in threads:
            self.tasks.put(None)
        for thread in threads:
            thread.join(timeout=30)


def test_concurrent_events_ends_and_sweeps_invoice_and_charge_each_session_once(stack):
    admin = stack.admin
    rng = random.Random(20261127)
    mark = stack.log_mark()

    # The server really runs several processes: two HTTP workers and a cron worker.
    pids = stack.server.worker_pids()
    assert len(pids.get("WorkerHTTP", ())) >= 2, pids
    assert len(pids.get("WorkerCron", ())) >= 1, pids

    # Only the sweep is scheduled (the addon's other actions, installed with it, are
    # switched off too), and it waits until the test lets it run.
    sweep_id = admin.ref(SWEEP)
    # Odoo's post-processing stays on too; the charges the sweep queues are queue_job jobs,
    # which the server's job runner runs.
    jobs = [sweep_id, admin.ref(POST_PROCESS)]
    others = admin("ir.cron", "search", [("id", "not in", jobs)])
    rpc_retrying(admin, "ir.cron", "write", others, {"active": False})
    later = odoo_datetime(utcnow() + timedelta(days=1))
    rpc_retrying(admin, "ir.cron", "write", [sweep_id], {"nextcall": later})
    admin(
        "res.company",
        "write",
        [admin.ref("base.main_company")],
        {"bookconnect_auto_end_minutes": AUTO_END_MINUTES},
    )

    # Both clients have a card that works.
    clients = {login: stack.partner(login) for login in ("client", "client2")}
    for login in clients:
        stack.save_card(login, login, "pm_card_visa")
    policy_values = {
        "mode": "minute",
        "rate": 1.0,
        "grace_minutes": 0,
        "rounding_increment": 1,
        "rounding_method": "up",
        "minimum_minutes": 0,
        "maximum_minutes": 0,
        "collection": "card",
    }
    policy = stack.policy(name="Concurrency: per minute, card", **policy_values)

    # Three kinds of sessions, all in the past:
    # - "therapist": ended by their therapist (and the manager) once their events are in; the
    #   last event is recent, so the sweep leaves them alone until then;
    # - "gone": both left long ago, the sweep ends them (and the therapist tries too);
    # - "no_left": the therapist's "left" is lost, the session is an hour overdue: the sweep
    #   ends it and closes the connection at the scheduled end.
    now = utcnow()
    plan = (
        [("therapist", now - timedelta(minutes=30))] * 18
        + [("gone", now - timedelta(minutes=100))] * 10
        + [("no_left", now - timedelta(minutes=160))] * 8
    )
    sessions = []
    for index, (ended_by, start) in enumerate(plan):
        therapist = ("therapist", "therapist2")[index % 2]
        client = ("client", "client2")[(index // 2) % 2]
        sessions.append(
            {
                "ended_by": ended_by,
                "therapist": therapist,
                "client": client,
                "start": start,
                "stop": start + timedelta(minutes=50),
                "events": script(
                    rng, "complete" if ended_by != "no_left" else ended_by, index, start
                ),
            }
        )
    for therapist in ("therapist", "therapist2"):
        mine = [s for s in sessions if s["therapist"] == therapist]
        rpc = stack.server.rpc(therapist, USERS[therapist])
        ids = rpc(
            "bookconnect.therapy.session",
            "create",
            [
                {
                    "therapist_id": rpc.uid,
                    "partner_id": clients[s["client"]],
                    "policy_id": policy,
                    "start": odoo_datetime(s["start"]),
                    "stop": odoo_datetime(s["stop"]),
                }
                for s in mine
            ],
        )
        tokens = rpc.read("bookconnect.therapy.session", ids, ["access_token"])
        for session, record in zip(mine, tokens, strict=True):
            session.update(id=record["id"], access_token=record["access_token"])
    by_id = {s["id"]: s for s in sessions}
    swept = [s for s in sessions if s["ended_by"] != "therapist"]
    by_therapist = [s for s in sessions if s["ended_by"] == "therapist"]

    def event_tasks(group):
        tasks = []
        for session in group:
            for event in session["events"]:
                tasks.append(("event", session, event))
                if rng.random() < 0.35:  # sent twice, possibly at the same moment
                    tasks.append(("event", session, event))
        return tasks

    load = Load(stack, sessions)
    # Phase 1: the events of the sessions the sweep will end, while the sweep waits.
    load.run(event_tasks(swept), rng=rng)

    # Phase 2: everything at once. The events of the other sessions (each session ended
    # three times as soon as its events are in), replays of the first events, the therapist
    # ending "gone" sessions, and the cron worker running the sweep every few seconds.
    triggers = Counter()

    def run_the_sweep():
        try:
            admin("ir.cron", "write", [sweep_id], {"nextcall": odoo_datetime(utcnow())})
            triggers["sent"] += 1
        except RpcError as exc:
            assert "cannot be modified right now" in exc.message, exc
            triggers["running"] += 1  # the cron worker is running it right now

    tasks = event_tasks(by_therapist)
    tasks += [("replay", s, e) for s in swept for e in s["events"] if rng.random() < 0.5]
    tasks += [("end", s, s["therapist"]) for s in swept if s["ended_by"] == "gone"]
    run_the_sweep()
    load.run(tasks, while_running=run_the_sweep, rng=rng)

    # The sweep ends what is left (bounded).
    deadline = time.monotonic() + 120
    while True:
        states = admin.read("bookconnect.therapy.session", list(by_id), ["state"])
        still_open = [r["id"] for r in states if r["state"] in ("scheduled", "in_progress")]
        if not still_open or time.monotonic() > deadline:
            break
        run_the_sweep()
        time.sleep(3)
    # The charges the sweep queued are sent by the job runner and booked by Odoo's job.
    stack.settle(timeout=PHASE_TIMEOUT)
    requests_made = load.requests + sum(triggers.values())

    # --- What Odoo did -------------------------------------------------------------------
    ids = list(by_id)
    invoices = admin(
        "account.move",
        "search_read",
        [
            ("bookconnect_session_id", "in", ids),
            ("move_type", "=", "out_invoice"),
            ("state", "!=", "cancel"),
        ],
        ["bookconnect_session_id", "state", "payment_state", "amount_total"],
    )
    charges = admin(
        "bookconnect.session.charge",
        "search_read",
        [("session_id", "in", ids), ("state", "!=", "cancelled")],
        ["session_id", "kind", "move_id"],
    )
    charges_of = defaultdict(list)
    for charge in charges:
        charges_of[charge["session_id"][0]].append(charge)
    posted = {invoice["id"] for invoice in invoices if invoice["state"] == "posted"}
    found = sum(
        1
        for charge in charges
        if charge["kind"] == "usage" and charge["move_id"] and charge["move_id"][0] in posted
    )
    record_reliability("concurrency", requests=requests_made, expected=len(ids), found=found)

    assert not load.problems, "\n".join(load.problems[:20])
    assert not still_open, f"sessions never ended: {still_open}"
    assert all(load.ends[s["id"]] == ENDS_PER_SESSION for s in by_therapist)
    # Every event was recorded exactly once, however many times and in whatever order it came.
    for session in sessions:
        for uid, *_rest in session["events"]:
            assert load.answers[uid].count("recorded") == 1, (uid, load.answers[uid])
    events = admin(
        "bookconnect.call.event",
        "search_read",
        [("session_id", "in", ids)],
        ["session_id", "event_uid"],
    )
    assert Counter((e["session_id"][0], e["event_uid"]) for e in events) == Counter(
        (s["id"], e[0]) for s in sessions for e in s["events"]
    )

    sessions_read = {
        r["id"]: r
        for r in admin.read(
            "bookconnect.therapy.session",
            ids,
            ["state", "invoice_id", "measured_seconds", "billable_minutes", "amount"],
        )
    }
    segments = defaultdict(list)
    for segment in admin(
        "bookconnect.call.segment",
        "search_read",
        [("session_id", "in", ids)],
        ["session_id", "role", "start", "end"],
    ):
        segments[segment["session_id"][0]].append(
            (
                segment["role"],
                datetime.fromisoformat(segment["start"]),
                datetime.fromisoformat(segment["end"]) if segment["end"] else None,
            )
        )
    core = billing_engine()
    rules = core.PricingRules(
        currency_rounding="0.01",
        quantity_digits=2,
        **{k: v for k, v in policy_values.items() if k != "collection"},
    )
    mismatches = []
    for session in sessions:
        record = sessions_read[session["id"]]
        expected = replay(session["events"], close_at=session["stop"])
        wanted = sorted(
            (role, start, end) for role, pairs in expected.items() for start, end in pairs
        )
        got = sorted(segments[session["id"]])
        seconds = core.billable_seconds(expected["therapist"], expected["client"])
        price = core.price_duration(seconds, rules)
        if got != wanted:
            mismatches.append(f"{session['id']} segments: expected {wanted}, got {got}")
        if (record["measured_seconds"], record["billable_minutes"], record["amount"]) != (
            seconds,
            price.billable_minutes,
            float(price.amount),
        ):
            mismatches.append(
                f"{session['id']} measure: expected {seconds}s {price.billable_minutes} min "
                f"{price.amount}, got {record}"
            )
        kinds = [c["kind"] for c in charges_of[session["id"]]]
        invoiced = [i["id"] for i in invoices if i["bookconnect_session_id"][0] == session["id"]]
        if kinds != ["usage"] or len(invoiced) != 1 or record["state"] != "paid":
            mismatches.append(f"{session['id']}: {record['state']}, invoices {kinds}")
    assert not mismatches, "\n".join(mismatches)
    for invoice in invoices:
        assert invoice["state"] == "posted"
        assert invoice["payment_state"] in ("paid", "in_payment"), invoice
        assert (
            invoice["amount_total"] == sessions_read[invoice["bookconnect_session_id"][0]]["amount"]
        )

    # Paid once: one done charge per invoice, one payment per charge, one PaymentIntent per
    # charge at Stripe, and no PaymentIntent Odoo does not know about.
    txs = admin(
        "payment.transaction",
        "search_read",
        [("invoice_ids", "in", [i["id"] for i in invoices]), ("operation", "!=", "refund")],
        ["reference", "state", "amount", "invoice_ids", "payment_id", "provider_reference"],
    )
    done = [tx for tx in txs if tx["state"] == "done"]
    assert len(done) == len(txs), [tx for tx in txs if tx["state"] != "done"]
    paid_by = Counter(invoice_id for tx in done for invoice_id in tx["invoice_ids"])
    assert set(paid_by) == {i["id"] for i in invoices}
    assert max(paid_by.values()) == 1, paid_by
    payments = admin(
        "account.payment",
        "search_read",
        [("payment_transaction_id", "in", [tx["id"] for tx in done])],
        ["payment_transaction_id", "amount"],
    )
    assert Counter(p["payment_transaction_id"][0] for p in payments) == Counter(
        tx["id"] for tx in done
    )
    total = {i["id"]: i["amount_total"] for i in invoices}
    for tx in done:
        assert tx["amount"] == pytest.approx(sum(total[i] for i in tx["invoice_ids"]))
    created = [
        r
        for r in stack.fake.requests(r"/v1/payment_intents", "POST")
        if r["status"] == 200 and not r.get("replayed")
    ]
    by_reference = Counter(r["params"].get("description") for r in created)
    assert by_reference == Counter(tx["reference"] for tx in done), by_reference

    # The cron worker (not an HTTP worker) ran the sweep, and HTTP requests were served by
    # more than one process.
    pids = stack.server.worker_pids()
    lines = stack.server.log_lines()[mark:]
    sweep_pids = {
        int(LOG_LINE.match(line)["pid"])
        for line in lines
        if SWEEP_JOB in line and "starting" in line and LOG_LINE.match(line)
    }
    assert sweep_pids and sweep_pids <= pids["WorkerCron"], (sweep_pids, pids)
    event_pids = {
        int(LOG_LINE.match(line)["pid"])
        for line in lines
        if ": external " in line and LOG_LINE.match(line)
    }
    assert len(event_pids & pids["WorkerHTTP"]) >= 2, (event_pids, pids)
    assert not stack.log_problems(mark)
