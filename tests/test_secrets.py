"""Secrets: the Stripe secret key, the Stripe webhook secret and the call-events secret.

Only system administrators read them (over RPC, the practice manager, the accountant and a
therapist get an access error, also when they search by a secret's value); no log of any
server the tests ran shows one; and the two webhook endpoints (Stripe's and the call events')
refuse everything while their secret is not set.
"""

import json

import pytest
from conftest import ACCOUNTANT, MANAGER
from fake_stripe import sign
from harness import LOGS, STARTED, RpcError, record_reliability
from stripe_stack import (
    CALL_SECRET,
    SECRET_KEY,
    SECRETS,
    call_event_body,
    sign_call_event,
    utcnow,
)

# The secrets the addon's own tests and demo data set (tests/common.py, demo/): the Odoo
# tests' log may not show them either.
ADDON_TEST_SECRETS = {
    "s3cret-for-tests",
    "sk_test_bookconnect",
    "whsec_bookconnect",
    "demo-call-secret",
}
ROLES = {
    "practice manager": MANAGER,
    "accountant": ACCOUNTANT,
    "therapist": ("therapist", "therapist"),
}


def refused(call, *args, **kwargs):
    try:
        call(*args, **kwargs)
    except RpcError as exc:
        return exc.name == "odoo.exceptions.AccessError"
    return False


def test_secrets_are_readable_by_system_administrators_only(practice):
    stack = practice.stack
    admin = stack.admin
    company = admin.ref("base.main_company")
    provider = stack.provider_id
    webhook_secret = stack.provider()["stripe_webhook_secret"]
    secrets = [
        ("res.company", company, "bookconnect_call_secret", CALL_SECRET),
        ("payment.provider", provider, "stripe_secret_key", SECRET_KEY),
        ("payment.provider", provider, "stripe_webhook_secret", webhook_secret),
    ]
    run, failures = 0, []
    for model, record_id, field, value in secrets:
        # The administrator reads it (the test would prove nothing otherwise).
        assert admin.read(model, record_id, [field])[field] == value
        for role, login in ROLES.items():
            rpc = stack.server.rpc(*login)
            attempts = {
                "read": (model, "read", [record_id], [field]),
                "search_read": (model, "search_read", [("id", "=", record_id)], [field]),
                # Searching by the value would tell whether a guess is right.
                "search by value": (model, "search", [(field, "=", value)]),
            }
            for label, args in attempts.items():
                run += 1
                if not refused(rpc, *args):
                    failures.append(f"{role} {label} {model}.{field}: not refused")
    # Nor through the settings, where an administrator edits the call-events secret.
    for role, login in ROLES.items():
        run += 1
        rpc = stack.server.rpc(*login)
        try:
            shown = rpc("res.config.settings", "default_get", ["bookconnect_call_secret"])
        except RpcError:
            continue
        if CALL_SECRET in json.dumps(shown):
            failures.append(f"{role} reads the call-events secret in the settings")
    record_reliability("access", run=run, passed=run - len(failures))
    assert not failures, "\n".join(failures)


def test_webhook_endpoints_refuse_everything_without_their_secret(practice):
    stack = practice.stack
    admin = stack.admin
    company = admin.ref("base.main_company")
    mark = stack.log_mark()

    # The call-events endpoint, for a session that is still open.
    theirs = practice.their_session
    body = call_event_body("no-secret-1", "joined", "client", utcnow())
    events_before = admin("bookconnect.call.event", "search_count", [])
    admin("res.company", "write", [company], {"bookconnect_call_secret": False})
    try:
        for label, signature in [
            ("signed with the former secret", sign_call_event(body)),
            ("signed with an empty secret", sign_call_event(body, secret="")),
            ("unsigned", False),
            ("garbage", "t=1,v1=00"),
        ]:
            response = stack.post_call_event(theirs["access_token"], body, signature)
            assert response.status_code == 401, (label, response.text)
    finally:
        admin("res.company", "write", [company], {"bookconnect_call_secret": CALL_SECRET})
    assert admin("bookconnect.call.event", "search_count", []) == events_before
    # With the secret back, the same event is accepted: the refusals were about the secret.
    assert stack.post_call_event(theirs["access_token"], body).status_code == 200

    # Stripe's webhook, with an event Stripe really sent about a payment Odoo knows.
    [tx] = admin.read("payment.transaction", practice.session["transaction_ids"], ["reference"])
    [event] = [
        e
        for e in stack.fake.events(type="payment_intent.succeeded")
        if e["data"]["object"].get("description") == tx["reference"]
    ]
    payload = json.dumps(event).encode()
    secret = stack.provider()["stripe_webhook_secret"]
    admin("payment.provider", "write", [stack.provider_id], {"stripe_webhook_secret": False})
    try:
        for label, signature in [
            ("signed with the former secret", sign(payload, secret)),
            ("signed with an empty secret", sign(payload, "")),
            ("unsigned", None),
            ("garbage", "t=1,v1=00"),
        ]:
            response = stack.post_webhook(payload, signature)
            assert response.status_code == 403, (label, response.status_code)
    finally:
        admin("payment.provider", "write", [stack.provider_id], {"stripe_webhook_secret": secret})
    assert stack.post_webhook(payload, sign(payload, secret)).status_code == 200
    assert not stack.log_problems(mark)


@pytest.mark.after_all
def test_no_log_shows_a_secret():
    """Every log written by this run (the Odoo tests' and each test server's): no secret."""
    secrets = {s for s in SECRETS | ADDON_TEST_SECRETS if s}
    logs = [
        path
        for path in LOGS.glob("*.log")
        if path.name == "odoo-tests.log" or path.stat().st_mtime >= STARTED - 1
    ]
    assert logs, f"no log to read in {LOGS}"
    found = []
    for path in logs:
        text = path.read_text(errors="replace")
        found += [f"{path.name}: {s[:6]}..." for s in secrets if s in text]
    assert not found, found
    # The servers of this run did log (so that the check above means something).
    assert sum(path.stat().st_size for path in logs) > 0
