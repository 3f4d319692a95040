"""Faults: Stripe failing in every way it can while Odoo charges, and Odoo itself killed.

On a real Odoo server and the fake Stripe (see ``stripe_stack.py``), each test injects one
fault while a session is charged: Stripe answering 500 (before or after it took the money),
answering too late (after Odoo gave up waiting), dropping the connection (before or after it
took the money), never recovering, dropping the answer to the capture of a card hold, and the
Odoo server killed with SIGKILL in the middle of the sweep, then restarted.

Afterwards each session is paid, or open with its pay link emailed, or queued for a retry
(a draft transaction whose payment job waits to try again), and Stripe's side shows no money
taken twice and none taken that Odoo does not know about. Each fault and its outcome go to
``.state/logs/fault-report.txt`` and to the reliability summary.
"""

import html
import time
from datetime import timedelta

import pytest
from harness import LOGS, psql, record_reliability
from stripe_stack import SECRET_KEY, StripeStack, utcnow

# Odoo waits this long for Stripe here (60 s in production): a fake Stripe sleeping longer
# answers after Odoo gave up.
ODOO_STRIPE_TIMEOUT = 3
REPORT = LOGS / "fault-report.txt"
SWEEP_CRON = "bookconnect_therapy.ir_cron_session_sweep"
# Odoo's own payment_stripe logs a dropped connection as an error; it is the fault injected.
DROPPED = "unable to reach endpoint at https://api.stripe.com/v1/payment_intents"


@pytest.fixture(scope="module")
def stack():
    with StripeStack(
        "faults", env={"BOOKCONNECT_FAKE_STRIPE_TIMEOUT": str(ODOO_STRIPE_TIMEOUT)}
    ) as running:
        yield running


@pytest.fixture(scope="module")
def report():
    """Each test adds the fault it injected and what became of it; written at the end."""
    entries = []
    yield entries
    lines = ["Faults injected and their outcomes", ""]
    for entry in entries:
        verdict = "survived" if entry["survived"] else "NOT SURVIVED"
        lines += [
            f"- {entry['fault']}: {verdict}",
            f"    injected: {entry['injected']}",
            f"    outcome:  {entry['outcome']}",
            f"    Stripe:   {entry['stripe']}",
        ]
    survived = sum(entry["survived"] for entry in entries)
    lines += ["", f"{len(entries)} faults injected, {survived} survived"]
    REPORT.parent.mkdir(parents=True, exist_ok=True)
    REPORT.write_text("\n".join(lines) + "\n")
    record_reliability("faults", injected=len(entries), survived=survived)


@pytest.fixture(scope="module")
def clients(stack):
    """Two clients whose saved cards work; a per-minute policy charging the card."""
    for login in ("client", "client2"):
        stack.save_card(login, login, "pm_card_visa")
    return {login: stack.partner(login) for login in ("client", "client2")}


@pytest.fixture(scope="module")
def card_policy(stack):
    return stack.policy(name="Faults: per minute, card", mode="minute", rate=1.0)


class Verdict:
    """What became of some sessions, on Odoo's side and on Stripe's."""

    def __init__(self, stack, session_ids):
        self.stack = stack
        admin = stack.admin
        self.sessions = admin.read(
            "bookconnect.therapy.session", session_ids, ["name", "state", "invoice_id"]
        )
        invoice_ids = [s["invoice_id"][0] for s in self.sessions if s["invoice_id"]]
        self.invoices = {
            i["id"]: i
            for i in admin.read(
                "account.move",
                invoice_ids,
                ["name", "payment_state", "amount_total", "partner_id"],
            )
        }
        self.txs = admin(
            "payment.transaction",
            "search_read",
            [
                "|",
                ("invoice_ids", "in", invoice_ids),
                ("bookconnect_session_id", "in", session_ids),
            ],
            ["reference", "state", "bookconnect_purpose", "invoice_ids"],
        )
        waiting = stack.payment_jobs(states=("pending",))
        self.retrying = {
            tx["id"]
            for tx in self.txs
            for job in waiting
            if job["func_string"].startswith(f"payment.transaction({tx['id']},)")
        }
        intents = stack.fake.payment_intents(SECRET_KEY)
        references = {tx["reference"] for tx in self.txs}
        self.intents = [i for i in intents if i.get("description") in references]

    def outcome(self, session):
        """``paid``, ``queued`` (for a retry), ``pay link`` (open, link emailed) or ``LOST``."""
        invoice = self.invoices.get(session["invoice_id"] and session["invoice_id"][0])
        if not invoice:
            return "LOST (no invoice)"
        if invoice["payment_state"] in ("paid", "in_payment") and session["state"] == "paid":
            return "paid"
        mine = [tx for tx in self.txs if invoice["id"] in tx["invoice_ids"]]
        if any(tx["id"] in self.retrying for tx in mine):
            return "queued"
        email = self.stack.admin.read("res.partner", invoice["partner_id"][0], ["email"])["email"]
        self.stack.send_queued_mail()
        links = [
            mail
            for mail in self.stack.smtp.find(
                to=email, subject=f"please pay invoice {invoice['name']} online"
            )
            if f"/my/invoices/{invoice['id']}" in html.unescape(self.stack.smtp.html(mail))
        ]
        if invoice["payment_state"] == "not_paid" and links:
            return "pay link"
        return f"LOST ({session['state']}, {invoice['payment_state']})"

    def outcomes(self):
        return {s["name"]: self.outcome(s) for s in self.sessions}

    def taken(self):
        """Cents Stripe took per transaction reference (succeeded PaymentIntents)."""
        taken = {}
        for intent in self.intents:
            if intent["status"] == "succeeded":
                reference = intent["description"]
                taken[reference] = taken.get(reference, 0) + intent["amount_received"]
        return taken

    def charged_twice(self):
        """References Stripe took money for more than once, or more than their invoices."""
        problems = []
        per_reference = {}
        for intent in self.intents:
            if intent["status"] == "succeeded":
                per_reference.setdefault(intent["description"], []).append(intent["id"])
        for reference, intents in per_reference.items():
            if len(intents) > 1:
                problems.append(f"{reference}: {len(intents)} payments {intents}")
        due = sum(round(i["amount_total"] * 100) for i in self.invoices.values())
        if sum(self.taken().values()) > due:
            problems.append(f"Stripe took {sum(self.taken().values())} cents for {due} due")
        return problems

    def unknown_to_odoo(self):
        """Payments Stripe took that Odoo does not know about, or believes failed (any
        session, not only these)."""
        taken = {
            i["description"]: i["id"]
            for i in self.stack.fake.payment_intents(SECRET_KEY)
            if i["status"] == "succeeded"
        }
        known = self.stack.admin(
            "payment.transaction",
            "search_read",
            [("reference", "in", list(taken))],
            ["reference", "state"],
        )
        alive = {tx["reference"] for tx in known if tx["state"] in ("draft", "authorized", "done")}
        return [f"{ref} ({intent})" for ref, intent in taken.items() if ref not in alive]

    def stripe_summary(self):
        succeeded = [i for i in self.intents if i["status"] == "succeeded"]
        return (
            f"{len(self.intents)} PaymentIntent(s), {len(succeeded)} succeeded, "
            f"{sum(self.taken().values()) / 100:.2f} taken for "
            f"{sum(i['amount_total'] for i in self.invoices.values()):.2f} invoiced"
        )


def record(report, fault, injected):
    entry = {
        "fault": fault,
        "injected": injected,
        "outcome": "test did not finish",
        "stripe": "-",
        "survived": False,
    }
    report.append(entry)
    return entry


def judge(stack, entry, session_ids, allowed=("paid", "queued", "pay link")):
    """Fill ``entry`` with what became of the sessions; assert nothing was lost or charged
    twice. :return: the outcomes by session name."""
    verdict = Verdict(stack, session_ids)
    outcomes = verdict.outcomes()
    twice = verdict.charged_twice() + verdict.unknown_to_odoo()
    entry["outcome"] = ", ".join(f"{name} {what}" for name, what in outcomes.items())
    entry["stripe"] = verdict.stripe_summary() + (f"; CHARGED TWICE: {twice}" if twice else "")
    assert not twice, twice
    assert set(outcomes.values()) <= set(allowed), outcomes
    return outcomes


def retry_now(stack, session_ids):
    """Make the payment jobs waiting for a retry due now, and let the job runner run them."""
    return stack.retry_now()


def held_session(stack, partner, policy, minutes=30):
    session = stack.book(partner, policy, utcnow() - timedelta(minutes=minutes + 10))
    stack.meet(session, minutes)
    return session


CHARGE_FAULTS = [
    (
        "Stripe answers 500 before acting",
        {"status": 500},
        "POST /v1/payment_intents answers 500 api_error; nothing is charged",
    ),
    (
        "Stripe answers 500 after charging",
        {"status": 500, "after": True},
        "the PaymentIntent is confirmed, then the answer is replaced by a 500",
    ),
    (
        "Stripe answers after Odoo gave up (timeout)",
        {"sleep": ODOO_STRIPE_TIMEOUT + 2},
        f"the fake waits {ODOO_STRIPE_TIMEOUT + 2}s (Odoo waits {ODOO_STRIPE_TIMEOUT}s), then "
        "charges the card",
    ),
    (
        "connection dropped before Stripe acted",
        {"drop": True},
        "the connection closes without an answer; nothing is charged",
    ),
    (
        "connection dropped after Stripe charged",
        {"drop": True, "after": True},
        "the card is charged, then the connection closes without an answer",
    ),
]


@pytest.mark.parametrize("fault,kwargs,injected", CHARGE_FAULTS, ids=[f[0] for f in CHARGE_FAULTS])
def test_charge_fault_is_retried_with_the_same_key_and_paid_once(
    stack, report, clients, card_policy, fault, kwargs, injected
):
    entry = record(report, fault, injected)
    mark = stack.log_mark()
    session = held_session(stack, clients["client"], card_policy)
    stack.fake.fault(r"/v1/payment_intents", **kwargs)
    try:
        ended = stack.end(session)
    finally:
        stack.fake.clear_faults()
    assert ended["state"] == "invoiced"
    assert judge(stack, entry, [session["id"]]) == {ended["name"]: "queued"}
    if kwargs.get("sleep"):
        time.sleep(kwargs["sleep"] - ODOO_STRIPE_TIMEOUT + 1)  # the fake finishes charging
    retry_now(stack, [session["id"]])
    outcomes = judge(stack, entry, [session["id"]])
    entry["outcome"] = f"queued for a retry, then {outcomes[ended['name']]} on the retry"
    assert outcomes == {ended["name"]: "paid"}
    # The retry was the same request: same idempotency key, so Stripe acted at most once.
    sent = [
        r
        for r in stack.fake.requests(r"/v1/payment_intents", "POST")
        if r["params"].get("description") == stack.transactions(session["id"])[0]["reference"]
    ]
    assert len(sent) == 2
    assert len({r["idempotency_key"] for r in sent}) == 1
    assert not stack.log_problems(mark, DROPPED)
    entry["survived"] = True


def test_stripe_down_for_good_ends_in_a_pay_link(stack, report, clients, card_policy):
    entry = record(
        report,
        "Stripe down for good",
        "every POST /v1/payment_intents answers 500, through all the retries",
    )
    mark = stack.log_mark()
    session = held_session(stack, clients["client"], card_policy)
    stack.fake.fault(r"/v1/payment_intents", status=500, times=50)
    try:
        ended = stack.end(session)
        seen = []
        for _attempt in range(6):
            outcome = judge(stack, entry, [session["id"]])[ended["name"]]
            seen.append(outcome)
            if outcome != "queued":
                break
            retry_now(stack, [session["id"]])
    finally:
        stack.fake.clear_faults()
    entry["outcome"] = f"{seen.count('queued')} attempts queued, then {seen[-1]}"
    assert seen[-1] == "pay link", seen
    [tx] = stack.transactions(session["id"])
    assert tx["state"] == "error"
    assert not stack.log_problems(mark)
    entry["survived"] = True


def test_lost_answer_to_a_hold_capture_never_charges_twice(stack, report, clients):
    entry = record(
        report,
        "connection dropped after Stripe captured a card hold",
        "the capture of the hold goes through, then the connection closes without an answer",
    )
    mark = stack.log_mark()
    policy = stack.policy(
        name="Faults: card hold",
        mode="minute",
        rate=1.0,
        prepayment="hold",
        hold_hours_before=24,
    )
    session = stack.book(clients["client2"], policy, utcnow() + timedelta(minutes=10))
    stack.admin.run_cron("bookconnect_therapy.ir_cron_place_holds")
    stack.settle()
    [hold] = stack.transactions(session["id"])
    assert hold["state"] == "authorized"
    # The session's time comes (it started 40 minutes ago), and it is held.
    stack.move(session, utcnow() - timedelta(minutes=40))
    stack.meet(session, 35)
    stack.fake.fault(r"/v1/payment_intents/[^/]+/capture", drop=True, after=True)
    try:
        ended = stack.end(session)
    finally:
        stack.fake.clear_faults()
    first = judge(stack, entry, [session["id"]])[ended["name"]]
    if first == "queued":
        retry_now(stack, [session["id"]])
    outcomes = judge(stack, entry, [session["id"]])
    entry["outcome"] = (
        "paid at once: Odoo asked Stripe, which had captured the hold; nothing else charged"
        if first == "paid"
        else f"{first}, then {outcomes[ended['name']]} on the retry"
    )
    assert outcomes == {ended["name"]: "paid"}
    assert not stack.log_problems(mark, "unable to reach endpoint")
    entry["survived"] = True


def test_server_killed_mid_payments_and_restarted(stack, report, clients, card_policy):
    entry = record(
        report,
        "Odoo killed (SIGKILL) mid-payments, restarted, jobs run again",
        "12 ended calls: the sweep invoices them and queues their charges (committed); the "
        "payments job sends them, each Stripe charge taking 1.5 s; the server's process group "
        "is killed after Stripe took the first payment",
    )
    admin = stack.admin
    sessions = [
        held_session(stack, clients[("client", "client2")[i % 2]], card_policy, minutes=20 + i)
        for i in range(12)
    ]
    ids = [s["id"] for s in sessions]
    # Both left long ago: the sweep ends them (after the company's delay).
    admin(
        "res.company",
        "write",
        [admin.ref("base.main_company")],
        {"bookconnect_auto_end_minutes": 1},
    )
    sent_before = len(stack.fake.requests(r"/v1/payment_intents", "POST"))
    # Each Stripe charge takes 1.5 s: the job runner, which starts sending as soon as the
    # sweep committed, has finished none when the sweep's call returns.
    stack.fake.fault(r"/v1/payment_intents", sleep=1.5, times=10)
    admin.run_cron(SWEEP_CRON)
    answered = [
        r
        for r in stack.fake.requests(r"/v1/payment_intents", "POST")[sent_before:]
        if "status" in r
    ]
    assert not answered, "the sweep itself sends no payment"
    queued = [tx for i in ids for tx in stack.transactions(i)]
    assert {tx["state"] for tx in queued} == {"draft"}, queued
    before = {i["id"] for i in stack.fake.payment_intents(SECRET_KEY)}
    deadline = time.monotonic() + 120
    while not [
        r
        for r in stack.fake.requests(r"/v1/payment_intents", "POST")[sent_before:]
        if "status" in r
    ]:
        assert time.monotonic() < deadline, "Stripe was never called: is the job runner running?"
        time.sleep(0.1)
    stack.server.kill()
    session_list = ",".join(str(int(i)) for i in ids)
    query = f"SELECT count(*) FROM payment_transaction WHERE state = 'draft' AND bookconnect_session_id IN ({session_list})"  # noqa: E501, S608
    unfinished = int(psql(stack.db, query))
    assert unfinished, "the payment jobs were not interrupted"
    stack.fake.clear_faults()
    taken_while_killed = len(
        [
            i
            for i in stack.fake.payment_intents(SECRET_KEY)
            if i["status"] == "succeeded" and i["id"] not in before
        ]
    )
    assert taken_while_killed, "Stripe took nothing before the kill: the fault was not mid-job"

    stack.server.start(timeout=300)
    mark = stack.log_mark()
    # The invoices and their queued charges outlived the kill; the job runner runs the jobs
    # the kill interrupted again, with the same references, hence the same idempotency keys.
    states = {s["state"] for s in admin.read("bookconnect.therapy.session", ids, ["state"])}
    assert states == {"invoiced"}, f"the sweep's work was lost: {states}"
    stack.settle()
    outcomes = judge(stack, entry, ids)
    entry["outcome"] = (
        f"Stripe had taken {taken_while_killed} payment(s) when the server died; after the "
        "restart: " + ", ".join(f"{n} {o}" for n, o in sorted(outcomes.items()))
    )
    assert set(outcomes.values()) == {"paid"}, outcomes
    assert not stack.log_problems(mark)
    entry["survived"] = True
