"""An Odoo server with the addon, paid through a fake Stripe, for end-to-end system tests.

``StripeStack`` starts, on 127.0.0.1 only:

- the fake Stripe server (``fake_stripe.py``: localstripe behind a thin Stripe-like layer);
- an SMTP sink that keeps the email Odoo sends;
- an Odoo server on its own database (cloned from the demo template, the addon installed),
  with the test-only server-wide module ``bookconnect_fake_stripe`` that points Odoo's Stripe
  API calls at the fake (``tests/odoo_addons``; production code is unchanged).

It configures the Stripe provider the way an administrator does (test mode, keys, published,
webhook created with Odoo's own button, which registers it with the fake) and offers the steps
of the product: save a card through the portal as Stripe.js would, book, send signed call
events, end, run scheduled actions, read what Odoo and the fake did. Use it as a context manager
(everything is stopped and the database dropped on exit).
"""

import hashlib
import hmac
import json
import os
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

import requests
from fake_stripe import FakeStripe
from harness import (
    LOG_LINE,
    LOGS,
    TEST_ADDONS,
    OdooServer,
    RpcError,
    SmtpSink,
    clone_db,
    drop_db,
    free_port,
    template,
)
from lxml import html

SECRET_KEY = "sk_test_bookconnect_e2e"
PUBLISHABLE_KEY = "pk_test_bookconnect_e2e"
CALL_SECRET = "e2e-call-secret"
WEBHOOK = "/payment/stripe/webhook"
# Every secret a stack configured (webhook secrets are made up by the fake Stripe): no log may
# ever show one (see test_secrets.py).
SECRETS = {SECRET_KEY, CALL_SECRET}


def utcnow():
    return datetime.now(timezone.utc).replace(microsecond=0, tzinfo=None)


def odoo_datetime(value):
    return value.strftime("%Y-%m-%d %H:%M:%S")


def sign_call_event(body, secret=CALL_SECRET, timestamp=None):
    """The ``X-BookConnect-Signature`` header of a call-events body (bytes), signed at
    ``timestamp`` (unix seconds, now by default) with ``secret``."""
    timestamp = int(time.time()) if timestamp is None else int(timestamp)
    digest = hmac.new(secret.encode(), b"%d.%s" % (timestamp, body), hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def call_event_body(uid, kind, participant, at):
    """The JSON body the external video service posts (``at``: naive UTC datetime)."""
    return json.dumps(
        {"id": uid, "event": kind, "participant": participant, "at": f"{at.isoformat()}Z"}
    ).encode()


class StripeStack:
    """:param workers: HTTP workers of the Odoo server (0: one threaded process, no cron).
    :param env: more environment variables for the Odoo server.
    :param prepare: called with the database name once it is cloned, before the server starts.
    """

    def __init__(self, name, workers=0, env=None, prepare=None):
        prefix = os.environ.get("BOOKCONNECT_TEST_DB", "bookconnect_test")
        self.db = f"{prefix}_{name}"
        self.name = name
        self.workers = workers
        self.env = env or {}
        self.prepare = prepare
        self.fake = FakeStripe(free_port(), LOGS / f"{name}-fake-stripe.log")
        self.smtp = SmtpSink()
        self.server = None
        self.provider_id = None

    # Life cycle -----------------------------------------------------------------------------

    def start(self):
        try:
            self.fake.start()
            self.smtp.start()
            clone_db(template("demo"), self.db)
            if self.prepare:
                self.prepare(self.db)
            self.server = OdooServer(
                self.db,
                "-i",
                "bookconnect_therapy",
                "--smtp",
                "127.0.0.1",
                "--smtp-port",
                str(self.smtp.port),
                log_name=self.name,
                workers=self.workers,
                addons=[TEST_ADDONS],
                load=["queue_job", "bookconnect_fake_stripe"],
                env={"BOOKCONNECT_FAKE_STRIPE_URL": self.fake.url, **self.env},
            )
            self.server.start(timeout=300)
            self.admin = self.server.rpc("admin", "admin")
            self.manager = self.server.rpc("manager", "manager")
            self.therapist = self.server.rpc("therapist", "therapist")
            self.configure()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        if self.server:
            self.server.stop()
        self.fake.stop()
        self.smtp.stop()
        drop_db(self.db)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def configure(self):
        """Set up the practice as an administrator would."""
        admin = self.admin
        admin("ir.config_parameter", "set_param", "web.base.url", self.server.url)
        admin("ir.config_parameter", "set_param", "web.base.url.freeze", "True")
        admin(
            "res.company",
            "write",
            [admin.ref("base.main_company")],
            {"bookconnect_call_secret": CALL_SECRET},
        )
        [self.provider_id] = admin(
            "payment.provider",
            "search",
            [("code", "=", "stripe"), ("company_id", "=", admin.ref("base.main_company"))],
        )
        admin(
            "payment.provider",
            "write",
            [self.provider_id],
            {
                "state": "test",
                "stripe_secret_key": SECRET_KEY,
                "stripe_publishable_key": PUBLISHABLE_KEY,
                "allow_tokenization": True,
                "capture_manually": False,
                "is_published": True,
            },
        )
        # Odoo's "Generate your webhook" button: registers the endpoint with (fake) Stripe and
        # stores the signing secret it answers.
        admin("payment.provider", "action_stripe_create_webhook", [self.provider_id])
        provider = self.provider()
        if not (provider["stripe_webhook_secret"] and provider["journal_id"]):
            raise RuntimeError(f"the Stripe provider is not ready: {provider}")
        SECRETS.add(provider["stripe_webhook_secret"])

    # Reading --------------------------------------------------------------------------------

    def provider(self):
        return self.admin.read(
            "payment.provider",
            self.provider_id,
            ["state", "journal_id", "stripe_webhook_secret"],
        )

    def partner(self, login):
        [user] = self.admin("res.users", "search_read", [("login", "=", login)], ["partner_id"])
        return user["partner_id"][0]

    def session(self, session_id):
        return self.admin.read(
            "bookconnect.therapy.session",
            session_id,
            ["name", "state", "amount", "billable_minutes", "invoice_id", "transaction_ids"],
        )

    def invoice(self, invoice_id):
        return self.admin.read(
            "account.move",
            invoice_id,
            [
                "name",
                "state",
                "payment_state",
                "amount_total",
                "amount_residual",
                "partner_id",
                "access_token",
                "line_ids",
            ],
        )

    def transactions(self, session_id):
        return self.admin(
            "payment.transaction",
            "search_read",
            [("bookconnect_session_id", "=", session_id)],
            [
                "reference",
                "state",
                "state_message",
                "amount",
                "bookconnect_held_amount",
                "bookconnect_purpose",
                "provider_reference",
                "token_id",
                "payment_id",
                "invoice_ids",
            ],
            order="id",
        )

    def messages(self, session_id):
        """What the session's chatter says, newest first (field-change records left out)."""
        return [
            m["body"]
            for m in self.admin(
                "mail.message",
                "search_read",
                [("model", "=", "bookconnect.therapy.session"), ("res_id", "=", session_id)],
                ["body"],
                order="id desc",
            )
            if m["body"]
        ]

    # The product's steps --------------------------------------------------------------------

    def save_card(self, login, password, card):
        """Save a card as the client does in the portal (My Account > Payment Methods): Odoo
        creates a SetupIntent, the test confirms it with ``card`` as Stripe.js would, then
        follows Stripe's redirection back to Odoo, which saves the token.

        :return: the ``payment.token`` Odoo created (dict).
        """
        web = self.server.web(login, password)
        page = html.fromstring(web.get("/my/payment_method").text)
        forms = page.xpath("//form[@id='o_payment_form']")
        if not forms:
            raise AssertionError(f"{login} is offered no way to save a card")
        context = forms[0].attrib
        [option] = page.xpath(
            "//input[@data-payment-option-type='payment_method'][@data-provider-code='stripe']"
            "[@data-payment-method-code='card']"
        )
        values = web.json(
            "/payment/transaction",
            provider_id=int(option.get("data-provider-id")),
            payment_method_id=int(option.get("data-payment-option-id")),
            token_id=None,
            amount=None,
            currency_id=None,
            partner_id=int(context["data-partner-id"]),
            flow="direct",
            tokenization_requested=True,
            landing_route=context["data-landing-route"],
            is_validation=True,
            access_token=context["data-access-token"],
            reference_prefix=context.get("data-reference-prefix"),
        )
        client_secret = values["client_secret"]
        setup_intent = client_secret.split("_secret_")[0]
        self.fake.client(SECRET_KEY).v1.setup_intents.confirm(
            setup_intent, params={"payment_method": card, "client_secret": client_secret}
        )
        returned = web.get(
            values["return_url"].removeprefix(self.server.url)
            + "&"
            + urlencode(
                {
                    "setup_intent": setup_intent,
                    "setup_intent_client_secret": client_secret,
                    "redirect_status": "succeeded",
                }
            ),
            allow_redirects=False,
        )
        if returned.status_code != 303:
            raise AssertionError(f"Stripe's return to Odoo answered {returned.status_code}")
        # The status page polls this route, which finishes the transaction.
        web.json("/payment/status/poll", csrf_token=None)
        tokens = self.admin(
            "payment.token",
            "search_read",
            [("partner_id", "=", int(context["data-partner-id"]))],
            ["provider_ref", "stripe_payment_method", "payment_details", "provider_id"],
            order="id desc",
            limit=1,
        )
        if not tokens:
            raise AssertionError(f"no card was saved for {login}")
        return tokens[0]

    def policy(self, **values):
        values.setdefault("name", "End-to-end policy")
        return self.manager("bookconnect.billing.policy", "create", values)

    def book(self, client, policy, start, minutes=50):
        session_id = self.therapist(
            "bookconnect.therapy.session",
            "create",
            {
                "therapist_id": self.therapist.uid,
                "partner_id": client,
                "policy_id": policy,
                "start": odoo_datetime(start),
                "stop": odoo_datetime(start + timedelta(minutes=minutes)),
            },
        )
        session = self.therapist.read(
            "bookconnect.therapy.session", session_id, ["access_token", "start"]
        )
        session["start"] = datetime.fromisoformat(session["start"])
        return session

    def move(self, session, start):
        """Move ``session`` to ``start``, keeping its length, as its therapist would (a test
        uses it for a session's time to come without waiting for it: call events dated in the
        future are refused)."""
        values = self.therapist.read(
            "bookconnect.therapy.session", session["id"], ["start", "stop"]
        )
        length = datetime.fromisoformat(values["stop"]) - datetime.fromisoformat(values["start"])
        self.therapist(
            "bookconnect.therapy.session",
            "write",
            [session["id"]],
            {"start": odoo_datetime(start), "stop": odoo_datetime(start + length)},
        )
        session["start"] = start
        return session

    def post_call_event(self, token, body, signature=None, headers=None, timeout=60):
        """POST ``body`` (bytes) to the call-events endpoint of the session ``token``, signed
        with the practice's secret unless ``signature`` is given (``False``: unsigned)."""
        headers = {"Content-Type": "application/json", **(headers or {})}
        if signature is None:
            signature = sign_call_event(body)
        if signature:
            headers["X-BookConnect-Signature"] = signature
        return requests.post(
            f"{self.server.url}/bookconnect/calls/{token}/events",
            data=body,
            headers=headers,
            timeout=timeout,
        )

    def call_event(self, session, uid, kind, participant, minute):
        """Post one signed event of the external video service, ``minute`` after the start."""
        at = session["start"] + timedelta(minutes=minute)
        response = self.post_call_event(
            session["access_token"], call_event_body(uid, kind, participant, at)
        )
        if response.status_code != 200:
            raise AssertionError(f"call event refused: {response.status_code} {response.text}")

    def meet(self, session, minutes):
        """Therapist and client join at the start and leave ``minutes`` later."""
        for uid, kind, participant, minute in [
            ("therapist-in", "joined", "therapist", 0),
            ("client-in", "joined", "client", 0),
            ("client-out", "left", "client", minutes),
            ("therapist-out", "left", "therapist", minutes),
        ]:
            self.call_event(session, uid, kind, participant, minute)

    def end(self, session):
        """The therapist ends the session (as the button does); its payment jobs run."""
        self.therapist("bookconnect.therapy.session", "action_end_session", [session["id"]])
        self.settle()
        return self.session(session["id"])

    # Payment jobs ----------------------------------------------------------------------------

    def payment_jobs(self, *domain, states=("pending", "enqueued", "started")):
        """The payment jobs (queue_job's root.stripe channel) in ``states``."""
        return self.admin(
            "queue.job",
            "search_read",
            [("channel", "=like", "root.stripe%"), ("state", "in", list(states)), *domain],
            ["uuid", "state", "eta", "func_string", "retry", "max_retries", "exc_message"],
            order="id",
        )

    def settle(self, timeout=90):
        """Wait until the server's job runner has run the payment jobs that are due (each in
        a transaction of its own, after the request that queued it), then run Odoo's
        post-processing of completed payments, as its cron would (the test servers run none).

        :raise AssertionError: when due jobs are still waiting after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            now = odoo_datetime(utcnow())
            due = self.payment_jobs("|", ("eta", "=", False), ("eta", "<=", now))
            if not due:
                break
            assert time.monotonic() < deadline, f"payment jobs not run by the job runner: {due}"
            time.sleep(0.2)
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.admin.run_cron("payment.cron_post_process_payment_tx")
                break
            except RpcError as exc:
                # A cron worker (when the server has one) is running it right now: let it end.
                assert "cannot be modified right now" in exc.message, exc
                assert time.monotonic() < deadline, "Odoo's post-processing never ended"
                time.sleep(1)

    def retry_now(self):
        """Make the payment jobs waiting for a retry due now, and let them run."""
        waiting = [job["id"] for job in self.payment_jobs(states=("pending",))]
        if waiting:
            past = odoo_datetime(utcnow() - timedelta(minutes=1))
            self.admin("queue.job", "write", waiting, {"eta": past})
        self.settle()
        return waiting

    def send_queued_mail(self):
        """Run Odoo's outgoing-mail queue now; return the SMTP sink."""
        self.admin.run_cron("mail.ir_cron_mail_scheduler_action")
        return self.smtp

    def post_webhook(self, payload, signature=None):
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if signature:
            headers["Stripe-Signature"] = signature
        return requests.post(
            f"{self.server.url}{WEBHOOK}", data=payload, headers=headers, timeout=60
        )

    # The server's log -----------------------------------------------------------------------

    def log_mark(self):
        return len(self.server.log_lines())

    def log_problems(self, mark, *allowed):
        """ERROR and CRITICAL lines logged since ``mark`` whose text contains none of
        ``allowed``."""
        return [
            line
            for line in self.server.log_lines()[mark:]
            if (m := LOG_LINE.match(line))
            and m["level"] in ("ERROR", "CRITICAL")
            and not any(text in line for text in allowed)
        ]
