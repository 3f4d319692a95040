"""End to end through Stripe: a real Odoo server process and a fake Stripe server (localstripe)
on 127.0.0.1, driven the way clients, therapists, Stripe.js and Stripe itself drive them.

Cards are saved through the portal (Odoo's own SetupIntent flow), sessions are metered by
signed call events, ended by the therapist, invoiced, and charged by Odoo's Stripe provider
against the fake; what Stripe holds is checked on the fake's side, what Odoo books on its side.
See ``stripe_stack.py`` for the set-up and the README for how to run these tests alone.
"""

import html
import json
import time
from datetime import timedelta

import pytest
import requests
from fake_stripe import sign
from harness import SmtpSink
from stripe_stack import SECRET_KEY, StripeStack, utcnow

DROPPED_CONNECTION = "unable to reach endpoint at https://api.stripe.com/v1/payment_intents"


@pytest.fixture(scope="module")
def stack():
    with StripeStack("stripe_e2e") as running:
        yield running


@pytest.fixture(scope="module")
def stripe(stack):
    """The official Stripe client, on the fake, with the practice's secret key."""
    return stack.fake.client(SECRET_KEY)


@pytest.fixture(scope="module")
def card_policy(stack):
    return stack.policy(name="Per minute, card charged after", mode="minute", rate=1.0)


@pytest.fixture(scope="module")
def jamie(stack):
    """A client who saved a card that works (Stripe's ``pm_card_visa``) in the portal."""
    return stack.partner("client"), stack.save_card("client", "client", "pm_card_visa")


def email_of(stack, partner):
    return stack.admin.read("res.partner", partner, ["email"])["email"]


def payment_intent_requests(stack, reference):
    return [
        r
        for r in stack.fake.requests(r"/v1/payment_intents", "POST")
        if r["params"].get("description") == reference
    ]


def test_saved_card_is_charged_when_the_session_ends(stack, stripe, jamie, card_policy):
    partner, token = jamie
    mark = stack.log_mark()
    # The card saved in the portal is a Stripe customer with the card attached to it.
    assert token["provider_ref"].startswith("cus_")
    assert token["payment_details"] == "4242"
    card = stripe.v1.payment_methods.retrieve(token["stripe_payment_method"])
    assert card.customer == token["provider_ref"]

    session = stack.book(partner, card_policy, utcnow() - timedelta(minutes=40))
    stack.meet(session, 35)
    ended = stack.end(session)

    assert (ended["state"], ended["billable_minutes"], ended["amount"]) == ("paid", 35, 35.0)
    invoice = stack.invoice(ended["invoice_id"][0])
    assert invoice["state"] == "posted"
    assert invoice["payment_state"] in ("paid", "in_payment")
    assert (invoice["amount_total"], invoice["amount_residual"]) == (35.0, 0.0)
    [tx] = stack.transactions(session["id"])
    assert (tx["state"], tx["bookconnect_purpose"], tx["amount"]) == ("done", "charge", 35.0)
    assert tx["token_id"][0] == token["id"]
    assert tx["invoice_ids"] == [invoice["id"]]

    # Stripe's side: one off-session PaymentIntent, confirmed with the saved card, sent once
    # with an idempotency key.
    [request] = payment_intent_requests(stack, tx["reference"])
    assert request["idempotency_key"]
    assert request["params"]["off_session"].lower() == "true"
    intent = stripe.v1.payment_intents.retrieve(tx["provider_reference"])
    assert intent.status == "succeeded"
    assert (intent.amount, intent.amount_received, intent.currency) == (3500, 3500, "usd")
    assert intent.customer == token["provider_ref"]
    assert intent.payment_method == token["stripe_payment_method"]

    # Odoo's side: a payment for the amount, reconciled with the invoice.
    payment = stack.admin.read(
        "account.payment",
        tx["payment_id"][0],
        ["amount", "partner_id", "reconciled_invoice_ids", "is_reconciled"],
    )
    assert payment["amount"] == 35.0
    assert payment["partner_id"][0] == partner
    assert payment["reconciled_invoice_ids"] == [invoice["id"]]
    assert payment["is_reconciled"]
    receivable = [
        line
        for line in stack.admin.read(
            "account.move.line", invoice["line_ids"], ["account_type", "reconciled"]
        )
        if line["account_type"] == "asset_receivable"
    ]
    assert receivable
    assert all(line["reconciled"] for line in receivable)

    # The client gets a receipt by email.
    sink = stack.send_queued_mail()
    [receipt] = sink.find(
        to=email_of(stack, partner), subject=f"payment received ({tx['reference']})"
    )
    assert invoice["name"] in SmtpSink.html(receipt)
    assert not stack.log_problems(mark)


def test_declined_card_leaves_the_invoice_open_and_emails_the_pay_link(stack, stripe, card_policy):
    mark = stack.log_mark()
    partner = stack.partner("client2")
    # Stripe's test card that saves fine and is declined when charged.
    stack.save_card("client2", "client2", "pm_card_chargeCustomerFail")
    session = stack.book(partner, card_policy, utcnow() - timedelta(minutes=40))
    stack.meet(session, 35)
    ended = stack.end(session)

    assert ended["state"] == "invoiced"
    invoice = stack.invoice(ended["invoice_id"][0])
    assert (invoice["state"], invoice["payment_state"]) == ("posted", "not_paid")
    assert invoice["amount_residual"] == 35.0
    [tx] = stack.transactions(session["id"])
    assert tx["state"] == "error"
    assert "declined" in tx["state_message"]
    assert not tx["payment_id"]
    intent = stripe.v1.payment_intents.retrieve(tx["provider_reference"])
    assert intent.status == "requires_payment_method"
    assert intent.last_payment_error.code == "card_declined"
    assert "declined" in stack.messages(session["id"])[0]

    sink = stack.send_queued_mail()
    [mail] = sink.find(
        to=email_of(stack, partner), subject=f"please pay invoice {invoice['name']} online"
    )
    invoice = stack.invoice(invoice["id"])  # the email gave the invoice its access token
    assert invoice["access_token"]
    link = f"{stack.server.url}/my/invoices/{invoice['id']}?access_token={invoice['access_token']}"
    body = html.unescape(SmtpSink.html(mail))
    assert link in body
    assert "declined" in body
    # The link opens the invoice, to pay it, without logging in.
    page = requests.get(link, timeout=60)
    assert page.status_code == 200
    assert invoice["name"] in page.text
    assert not stack.log_problems(mark)


def test_card_hold_is_captured_for_the_measured_amount(stack, stripe, jamie):
    mark = stack.log_mark()
    partner, _token = jamie
    policy = stack.policy(
        name="Per minute, card hold",
        mode="minute",
        rate=1.0,
        prepayment="hold",
        hold_hours_before=24,
    )
    session = stack.book(partner, policy, utcnow() + timedelta(minutes=10), minutes=50)
    stack.admin.run_cron("bookconnect_therapy.ir_cron_place_holds")
    stack.settle()
    [hold] = stack.transactions(session["id"])
    assert (hold["state"], hold["bookconnect_purpose"], hold["amount"]) == (
        "authorized",
        "hold",
        50.0,
    )
    intent = stripe.v1.payment_intents.retrieve(hold["provider_reference"])
    assert (intent.status, intent.amount, intent.capture_method) == (
        "requires_capture",
        5000,
        "manual",
    )

    # The session's time comes (it started 40 minutes ago), and it is held.
    stack.move(session, utcnow() - timedelta(minutes=40))
    stack.meet(session, 35)
    ended = stack.end(session)

    assert (ended["state"], ended["amount"]) == ("paid", 35.0)
    [hold] = stack.transactions(session["id"])
    assert hold["state"] == "done"
    assert (hold["amount"], hold["bookconnect_held_amount"]) == (35.0, 50.0)
    [capture] = stack.fake.requests(rf"/v1/payment_intents/{intent.id}/capture")
    assert capture["params"] == {"amount_to_capture": "3500"}
    # Stripe took what was used and released the rest of the hold.
    intent = stripe.v1.payment_intents.retrieve(intent.id)
    assert intent.status == "succeeded"
    assert (intent.amount, intent.amount_received) == (5000, 3500)
    assert intent.latest_charge.amount_captured == 3500
    # Nothing else was charged for this session.
    invoice = stack.invoice(ended["invoice_id"][0])
    assert not payment_intent_requests(stack, invoice["name"])
    assert invoice["payment_state"] in ("paid", "in_payment")
    payment = stack.admin.read("account.payment", hold["payment_id"][0], ["amount"])
    assert payment["amount"] == 35.0
    assert "released" in stack.messages(session["id"])[0]

    # At the API version Odoo uses, Stripe reports the released part as a refund of the charge
    # (charge.refunded). No money went back to the client: nothing is booked for it.
    [released] = stack.fake.events(type="charge.refunded", object_id=intent.latest_charge.id)
    assert released["data"]["object"]["amount_refunded"] == 1500
    webhook_url = f"{stack.server.url}/payment/stripe/webhook"
    for _delivery in range(2):  # Stripe may deliver an event more than once
        assert stack.fake.deliver(released["id"]) == [{"url": webhook_url, "status": 200}]
    stack.admin.run_cron("payment.cron_post_process_payment_tx")
    children = stack.admin(
        "payment.transaction",
        "search_read",
        [("source_transaction_id", "=", hold["id"])],
        ["state", "operation", "amount", "payment_id"],
    )
    assert not [c for c in children if c["state"] == "done" or c["payment_id"]], children
    assert stack.session(session["id"])["state"] == "paid"
    assert stack.invoice(invoice["id"])["payment_state"] in ("paid", "in_payment")
    assert not stack.log_problems(mark)


def test_signed_webhook_completes_a_payment_once_and_bad_signatures_are_refused(
    stack, stripe, jamie, card_policy
):
    mark = stack.log_mark()
    partner, _token = jamie
    session = stack.book(partner, card_policy, utcnow() - timedelta(minutes=40))
    stack.meet(session, 30)
    # Stripe takes the payment, but its answer never reaches Odoo.
    stack.fake.fault(r"/v1/payment_intents", drop=True, after=True)
    try:
        ended = stack.end(session)
    finally:
        stack.fake.clear_faults()
    assert ended["state"] == "invoiced"
    [tx] = stack.transactions(session["id"])
    # The payment job tried once and waits to try again (same reference, same key).
    assert tx["state"] == "draft"
    [job] = stack.payment_jobs(("func_string", "=like", f"payment.transaction({tx['id']},)%"))
    assert (job["state"], job["retry"]) == ("pending", 1)
    [event] = [
        e
        for e in stack.fake.events(type="payment_intent.succeeded")
        if e["data"]["object"]["description"] == tx["reference"]
    ]

    # Forged, unsigned, stale or tampered events are refused and change nothing.
    payload = json.dumps(event).encode()
    secret = stack.provider()["stripe_webhook_secret"]
    tampered = payload.replace(b'"amount": 3000', b'"amount": 1')
    assert tampered != payload
    for body, signature in [
        (payload, sign(payload, "whsec_not_the_secret")),
        (payload, None),
        (payload, "garbage"),
        (payload, sign(payload, secret, time.time() - 3600)),
        (tampered, sign(payload, secret)),
    ]:
        assert stack.post_webhook(body, signature).status_code == 403, signature
    assert stack.transactions(session["id"])[0]["state"] == "draft"

    # Stripe delivers the event, signed with the secret Odoo got when it created the webhook.
    webhook_url = f"{stack.server.url}/payment/stripe/webhook"
    assert stack.fake.deliver(event["id"]) == [{"url": webhook_url, "status": 200}]
    [tx] = stack.transactions(session["id"])
    assert tx["state"] == "done"
    assert tx["provider_reference"] == event["data"]["object"]["id"]
    stack.admin.run_cron("payment.cron_post_process_payment_tx")
    assert stack.session(session["id"])["state"] == "paid"
    invoice = stack.invoice(ended["invoice_id"][0])
    assert invoice["payment_state"] in ("paid", "in_payment")

    # Delivered again (Stripe retries): accepted, nothing happens twice.
    assert stack.fake.deliver(event["id"]) == [{"url": webhook_url, "status": 200}]
    stack.admin.run_cron("payment.cron_post_process_payment_tx")
    assert stack.transactions(session["id"])[0]["state"] == "done"
    payments = stack.admin(
        "account.payment", "search_read", [("payment_transaction_id", "=", tx["id"])], ["amount"]
    )
    assert [p["amount"] for p in payments] == [30.0]
    assert len(payment_intent_requests(stack, tx["reference"])) == 1
    # Odoo logs the lost answer itself; nothing else went wrong.
    assert not stack.log_problems(mark, DROPPED_CONNECTION)


def test_without_webhook_secret_events_are_refused_and_cards_not_charged(stack, jamie, card_policy):
    mark = stack.log_mark()
    partner, _token = jamie
    paid = stack.book(partner, card_policy, utcnow() - timedelta(minutes=40))
    stack.meet(paid, 20)
    assert stack.end(paid)["state"] == "paid"
    [tx] = stack.transactions(paid["id"])
    [event] = [
        e
        for e in stack.fake.events(type="payment_intent.succeeded")
        if e["data"]["object"]["description"] == tx["reference"]
    ]
    secret = stack.provider()["stripe_webhook_secret"]
    stack.admin("payment.provider", "write", [stack.provider_id], {"stripe_webhook_secret": False})
    try:
        # Signed by Stripe, but Odoo can no longer check it: refused.
        webhook_url = f"{stack.server.url}/payment/stripe/webhook"
        assert stack.fake.deliver(event["id"]) == [{"url": webhook_url, "status": 403}]

        # And no card is charged unattended: the client is sent the pay link instead.
        session = stack.book(partner, card_policy, utcnow() - timedelta(minutes=40))
        stack.meet(session, 25)
        sent = len(stack.fake.requests(r"/v1/payment_intents", "POST"))
        ended = stack.end(session)
        assert len(stack.fake.requests(r"/v1/payment_intents", "POST")) == sent
        assert ended["state"] == "invoiced"
        assert not stack.transactions(session["id"])
        assert "no webhook secret" in stack.messages(session["id"])[0]
        invoice = stack.invoice(ended["invoice_id"][0])
        assert invoice["payment_state"] == "not_paid"
        sink = stack.send_queued_mail()
        assert sink.find(
            to=email_of(stack, partner), subject=f"please pay invoice {invoice['name']} online"
        )
    finally:
        stack.admin(
            "payment.provider", "write", [stack.provider_id], {"stripe_webhook_secret": secret}
        )
    assert not stack.log_problems(mark)
