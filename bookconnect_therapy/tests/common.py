import json
import os
from datetime import datetime, timedelta
from unittest.mock import patch

from odoo import Command, fields
from odoo.tests import TransactionCase

from odoo.addons.payment.tests.common import PaymentCommon
from odoo.addons.payment_stripe.models.payment_provider import (
    PaymentProvider as StripeProvider,
)
from odoo.addons.queue_job import delay as queue_job_delay
from odoo.addons.queue_job.exception import FailedJobError, RetryableJobError
from odoo.addons.queue_job.job import Job


def record_reliability(check, **figures):
    """Append figures for the reliability summary ``make test`` prints (concurrency, faults,
    hostile input, access checks); a no-op when the tests run outside ``make test``."""
    path = os.environ.get("BOOKCONNECT_RELIABILITY_FILE")
    if path:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"check": check, **figures}) + "\n")


class BookconnectCase(TransactionCase):
    """Company, people and policies that most tests share; helpers that keep tests short."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env = cls.env(
            context=dict(cls.env.context, tracking_disable=True, no_reset_password=True)
        )
        # Payment jobs run at once (queue_job's direct mode), in the tests' requests and in
        # those of their browsers alike, unless a test asks for them to be stored
        # (queue_job__no_delay=False in the context) to run them as the job runner does.
        cls.startClassPatcher(
            patch.object(
                queue_job_delay,
                "must_run_without_delay",
                side_effect=lambda env: env.context.get("queue_job__no_delay", True),
            )
        )
        cls.company = cls.env.company
        cls.currency = cls.company.currency_id
        cls.group_therapist = cls.env.ref("bookconnect_therapy.group_therapist")
        cls.group_manager = cls.env.ref("bookconnect_therapy.group_practice_manager")
        cls.manager = cls._make_user("Pat Manager", "pm", [cls.group_manager])
        cls.therapist = cls._make_user("Alex Therapist", "ta", [cls.group_therapist])
        cls.therapist_b = cls._make_user("Blair Therapist", "tb", [cls.group_therapist])
        cls.policy_minute = cls.env["bookconnect.billing.policy"].create(
            {"name": "Per minute", "mode": "minute", "rate": 0.65, "currency_id": cls.currency.id}
        )
        cls.policy_session = cls.env["bookconnect.billing.policy"].create(
            {"name": "Per session", "mode": "session", "rate": 90, "currency_id": cls.currency.id}
        )

    @classmethod
    def _make_user(cls, name, login, groups, portal=False):
        base = cls.env.ref("base.group_portal" if portal else "base.group_user")
        return cls.env["res.users"].create(
            {
                "name": name,
                "login": f"bc_{login}",
                "email": f"{login}@example.com",
                "groups_id": [Command.set([base.id] + [g.id for g in groups])],
            }
        )

    @classmethod
    def _make_policy(cls, **values):
        values.setdefault("name", "Test policy")
        values.setdefault("currency_id", cls.currency.id)
        return cls.env["bookconnect.billing.policy"].create(values)

    def policy(self, **values):
        return self._make_policy(**values)


class SessionCase(BookconnectCase):
    """Clients, a company policy, and helpers to book, meter and end sessions."""

    T0 = datetime(2026, 11, 27, 10, 0)

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company.bookconnect_policy_id = cls.policy_minute
        cls.company.sudo().bookconnect_call_secret = "s3cret-for-tests"
        cls.client_user = cls._make_user("Casey Client", "cc", [], portal=True)
        cls.client = cls.client_user.partner_id
        cls.client_b_user = cls._make_user("Dana Client", "dc", [], portal=True)
        cls.client_b = cls.client_b_user.partner_id
        cls.client.email = "casey@example.com"

    def book(self, start=None, minutes=50, therapist=None, client=None, **values):
        start = start or self.T0
        values.update(
            {
                "therapist_id": (therapist or self.therapist).id,
                "partner_id": (client or self.client).id,
                "start": start,
                "stop": start + timedelta(minutes=minutes),
            }
        )
        session = self.env["bookconnect.therapy.session"].create(values)
        session._confirm()
        return session

    def at(self, minutes, seconds=0):
        return self.T0 + timedelta(minutes=minutes, seconds=seconds)

    def external(self, session, role, kind, minute, uid=None):
        """Record an external join/leave event ``minute`` minutes after T0."""
        uid = uid or f"{role}-{kind}-{minute}"
        recorded = session.call_id._record_external_event(uid, kind, role, self.at(minute))
        session.call_id._started_sessions()._mark_in_progress()
        return recorded

    def held(self, minutes_together, **values):
        """A session booked at T0 where both were connected for ``minutes_together``."""
        session = self.book(**values)
        self.external(session, "therapist", "joined", 0)
        self.external(session, "client", "joined", 0)
        self.external(session, "client", "left", minutes_together)
        self.external(session, "therapist", "left", minutes_together)
        return session

    def discuss_member(self, session, role):
        """The Discuss channel member of ``role`` in the session's call (created on demand)."""
        event = session.calendar_event_id.sudo()
        if not event.videocall_channel_id:
            event._create_videocall_channel()
        partner = session.call_id._partner_of(role)
        channel = event.videocall_channel_id
        return channel.channel_member_ids.filtered(lambda m: m.partner_id == partner)


class StripeSessionCase(SessionCase, PaymentCommon):
    """Odoo's Stripe provider in test mode (prepared by Odoo's own ``PaymentCommon``), a saved
    card for the client, and a fake Stripe API behind ``_stripe_make_request``: tests script its
    answers and read the requests made."""

    @classmethod
    def default_env_context(cls):
        # Chatter messages and followers are part of what these tests check.
        return {"tracking_disable": True, "no_reset_password": True}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Our payments are booked in the ledger by Odoo's post-processing: keep it.
        cls.enable_post_process_patcher = False
        cls.stripe = cls._prepare_provider(
            "stripe",
            update_values={
                "stripe_secret_key": "sk_test_bookconnect",
                "stripe_publishable_key": "pk_test_bookconnect",
                "stripe_webhook_secret": "whsec_bookconnect",
                "allow_tokenization": True,
                "capture_manually": False,
            },
        )
        cls.provider = cls.stripe
        cls.card = cls.env.ref("payment.payment_method_card")
        cls.payment_method_id = cls.card.id
        cls.token = cls._make_token(cls.client, customer="cus_client", details="4242")
        cls.policy_card = cls._make_policy(mode="minute", rate=1.0, collection="card")

    @classmethod
    def _make_token(cls, partner, customer="cus_client_b", details="4444"):
        """A card saved by ``partner`` at the test Stripe provider (``PaymentCommon``'s token,
        with Stripe's customer and payment method)."""
        return PaymentCommon._create_token(
            cls,
            partner_id=partner.id,
            provider_ref=customer,
            stripe_payment_method="pm_card_visa",
            payment_details=details,
        )

    def setUp(self):
        super().setUp()
        self.stripe_calls = []
        self.stripe_answers = {}
        self._stripe_counter = 0
        fake = self._fake_stripe

        def _stripe_make_request(provider, endpoint, **kwargs):
            return fake(provider, endpoint, **kwargs)

        # Patched where payment_stripe defines it, so that our override around it still runs.
        self.startPatcher(
            patch.object(StripeProvider, "_stripe_make_request", _stripe_make_request)
        )

    def _fake_stripe(
        self, provider, endpoint, payload=None, method="POST", offline=False, idempotency_key=None
    ):
        payload = dict(payload or {})
        self.stripe_calls.append(
            {"endpoint": endpoint, "payload": payload, "idempotency_key": idempotency_key}
        )
        answer = self.stripe_answers.get(endpoint)
        if isinstance(answer, list):
            answer = answer.pop(0) if answer else None
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            answer = answer(payload)
        if answer is not None:
            return answer
        self._stripe_counter += 1
        if endpoint == "payment_intents":
            manual = payload.get("capture_method") == "manual"
            return {
                "id": f"pi_{idempotency_key or self._stripe_counter}",
                "status": "requires_capture" if manual else "succeeded",
                "amount": payload.get("amount"),
                "customer": payload.get("customer"),
                "payment_method": {"id": "pm_card_visa", "type": "card", "card": {"brand": "visa"}},
            }
        if endpoint.endswith("/capture"):
            return {
                "id": endpoint.split("/")[1],
                "status": "succeeded",
                "amount_received": payload.get("amount_to_capture"),
            }
        if endpoint.endswith("/cancel"):
            return {"id": endpoint.split("/")[1], "status": "canceled"}
        if endpoint == "refunds":
            return {
                "id": f"re_{self._stripe_counter}",
                "object": "refund",
                "status": "succeeded",
                "amount": payload.get("amount"),
            }
        raise AssertionError(f"unexpected Stripe call {endpoint}")

    def payment_jobs(self, states=("pending", "enqueued")):
        """The payment jobs (queue.job of the root.stripe channel) in ``states``."""
        return self.env["queue.job"].search(
            [("channel", "=like", "root.stripe%"), ("state", "in", list(states))], order="id"
        )

    def run_payment_jobs(self):
        """Run the payment jobs that are due, as queue_job's runner does: each in a
        transaction of its own (a savepoint here), postponed by the retry pattern when it
        asks to be retried, failed (and its work rolled back) when it raises anything else.

        :return: the queue.job records run.
        """
        now = fields.Datetime.now()
        due = self.payment_jobs().filtered(lambda record: not record.eta or record.eta <= now)
        # As under the job runner, the jobs a job queues are stored, not run at once.
        env = self.env(context=dict(self.env.context, queue_job__no_delay=False))
        for record in due:
            job = Job.load(env, record.uuid)
            job.set_started()
            job.store()
            try:
                with self.env.cr.savepoint():
                    job.perform()
            except RetryableJobError as err:
                job.postpone(result=str(err), seconds=err.seconds)
                job.set_pending(reset_retry=False)
            except FailedJobError as err:
                job.set_failed(exc_message=str(err))
            except Exception as err:  # what the job runner does with any error
                job.set_failed(exc_name=type(err).__name__, exc_message=str(err))
            else:
                job.set_done()
            job.store()
        return due

    def mails(self, subject_part):
        """Emails created (sent or queued) under ``mock_mail_gateway`` whose subject says so."""
        return self._new_mails.filtered(lambda m: subject_part in (m.subject or ""))

    def calls(self, endpoint):
        return [c for c in self.stripe_calls if c["endpoint"] == endpoint]

    def held(self, minutes_together, **values):
        values.setdefault("policy_id", self.policy_card.id)
        return super().held(minutes_together, **values)
