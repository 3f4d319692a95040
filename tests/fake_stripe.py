"""A fake Stripe API on 127.0.0.1 for the system tests.

The server is localstripe's stateful aiohttp application, run in a subprocess of the test and
bound to 127.0.0.1 only, with a thin layer that makes it answer as Stripe does to what Odoo's
``payment_stripe`` sends:

- parameters Stripe accepts and localstripe rejects (``description``, ``setup_future_usage``,
  ``mandate``, ``return_url``, ``statement_descriptor``, ``receipt_email``, ``shipping``) are
  accepted; ``description`` is kept on the object, as Stripe does, so that webhook events carry
  the merchant reference Odoo finds its transaction by;
- parameters sent in the body of a GET (Odoo asks ``expand[]`` that way) are read;
- a declined confirmation answers 402 with ``error.type = card_error`` and the PaymentIntent in
  ``error.payment_intent``;
- ``Idempotency-Key`` is honoured: a POST repeated with the same key and parameters gets the
  first answer again (``Idempotent-Replayed: true``) instead of acting twice;
- ``/v1/webhook_endpoints`` registers where signed events go; a SetupIntent that succeeds
  attaches its card to the customer; captures report ``amount_received``/``amount_captured``;
  charges carry their payment's description; as at the API version Odoo pins (2019-05-16), what
  a partial capture leaves and a cancelled authorization are refunds of the charge, and every
  refund raises ``charge.refunded``.

Test controls under ``/_test/`` (no key needed): fault injection (the next N requests to an
endpoint answer an error, hang, or drop the connection, before or after the fake acted), the
log of the requests received, the events Stripe would have sent, and their delivery, signed as
Stripe signs them, on demand (``auto`` delivery as Stripe does it can be switched on).

``FakeStripe`` (below) starts and drives that server from a test. The server side imports
localstripe and aiohttp only when run as a script (``python tests/fake_stripe.py --port N``).
"""

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qsl

import requests

# Parameters Stripe accepts on these objects that localstripe does not know; ``description`` is
# kept on the object, the rest are only accepted.
EXTRA_PARAMS = {
    "PaymentIntent": (
        "description",
        "setup_future_usage",
        "mandate",
        "return_url",
        "statement_descriptor",
        "receipt_email",
        "shipping",
    ),
    "SetupIntent": ("description", "mandate_data", "payment_method_options", "return_url"),
}
CANCEL_ROUTE = "/v1/payment_intents/{id}/cancel"


def sign(payload, secret, timestamp=None):
    """A ``Stripe-Signature`` header for ``payload`` (bytes), as Stripe computes it."""
    timestamp = int(time.time()) if timestamp is None else int(timestamp)
    digest = hmac.new(secret.encode(), b"%d.%s" % (timestamp, payload), hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


# ----------------------------------------------------------------------------------------------
# Server side (runs in its own process)
# ----------------------------------------------------------------------------------------------


class _State:
    def __init__(self):
        self.faults = []
        self.log = []
        self.events = []
        self.endpoints = {}
        self.idempotent = {}
        self.in_flight = set()
        self.auto_deliver = False
        self.deliveries = set()


def _patch_localstripe(state):
    """Make localstripe's resources accept and keep what Stripe does (see the module doc)."""
    from localstripe import resources

    # State lives in memory only: localstripe would pickle it to /tmp on every change.
    resources.Store.dump_to_disk = lambda self: None

    def accept(cls, names):
        original = cls.__init__

        def __init__(self, *args, **kwargs):
            extra = {name: kwargs.pop(name) for name in list(kwargs) if name in names}
            original(self, *args, **kwargs)
            if "description" in names:
                self.description = extra.get("description")

        cls.__init__ = __init__

    for name, params in EXTRA_PARAMS.items():
        accept(getattr(resources, name), params)

    payment_intent = resources.PaymentIntent
    report_failure = payment_intent._report_failure

    def _report_failure(self):
        try:
            report_failure(self)
        except resources.UserError as exc:
            error = exc.body["error"]
            error.update(
                type="card_error",
                decline_code="generic_decline",
                payment_intent=self._export(),
            )
            raise

    payment_intent._report_failure = _report_failure

    create_charge = payment_intent._create_charge

    def _create_charge(self, on_failure_now):
        # The charge has its payment's description on Stripe (the merchant reference).
        try:
            create_charge(self, on_failure_now)
        finally:
            if self.latest_charge is not None:
                self.latest_charge.description = self.description

    payment_intent._create_charge = _create_charge

    refund_init = resources.Refund.__init__

    def _refund_init(self, *args, **kwargs):
        # Every refund, including the one Stripe makes for what a partial capture leaves (at
        # the API version Odoo pins, 2019-05-16), is announced by a charge.refunded event.
        refund_init(self, *args, **kwargs)
        charge = resources.Charge._api_retrieve(self.charge)
        resources.schedule_webhook(resources.Event("charge.refunded", charge))

    resources.Refund.__init__ = _refund_init

    cancel = payment_intent._api_cancel.__func__

    def _api_cancel(cls, id, **kwargs):
        intent = cancel(cls, id, **kwargs)
        charge = intent.latest_charge
        if charge is not None and charge.status == "succeeded" and not charge.captured:
            # At Odoo's API version, Stripe refunds a cancelled authorization in full.
            resources.Refund(charge=charge.id, amount=charge.amount)
        return intent

    payment_intent._api_cancel = classmethod(_api_cancel)
    # localstripe's routes hold the methods themselves, bound when its classes were defined.
    resources.extra_apis[:] = [
        (method, url, payment_intent._api_cancel if url == CANCEL_ROUTE else func)
        for method, url, func in resources.extra_apis
    ]

    attach = resources.SetupIntent._attach_pm

    def _attach_pm(self, pm):
        attach(self, pm)
        if self.status == "succeeded" and self.customer:
            pm.customer = self.customer

    resources.SetupIntent._attach_pm = _attach_pm

    capture = resources.Charge._capture

    def _capture(self, amount, on_success=None):
        self._amount_captured = resources.try_convert_to_int(
            self.amount if amount is None else amount
        )
        return capture(self, amount, on_success=on_success)

    resources.Charge._capture = _capture
    resources.Charge.amount_captured = property(
        lambda self: (
            getattr(self, "_amount_captured", self.amount)
            if self.captured and self.status == "succeeded"
            else 0
        )
    )
    payment_intent.amount_received = property(
        lambda self: (
            self.latest_charge.amount_captured
            if self.latest_charge is not None and self.status == "succeeded"
            else 0
        )
    )

    def record_event(event):
        state.events.append(event)
        if state.auto_deliver:
            task = asyncio.ensure_future(_deliver(state, event, delay=1))
            state.deliveries.add(task)
            task.add_done_callback(state.deliveries.discard)

    resources.schedule_webhook = record_event
    return resources


async def _deliver(state, event, url=None, secret=None, delay=0):
    """Post ``event`` signed to the registered endpoints (or to ``url`` with ``secret``)."""
    import aiohttp

    if delay:
        await asyncio.sleep(delay)
    payload = json.dumps(event._export(), indent=2, sort_keys=True).encode()
    targets = (
        [(url, secret)]
        if url
        else [
            (endpoint["url"], endpoint["secret"])
            for endpoint in state.endpoints.values()
            if "*" in endpoint["enabled_events"] or event.type in endpoint["enabled_events"]
        ]
    )
    results = []
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        for target, key in targets:
            headers = {
                "Content-Type": "application/json; charset=utf-8",
                # Each delivery attempt is signed at the time it is made, as Stripe does.
                "Stripe-Signature": sign(payload, key),
            }
            try:
                async with session.post(target, data=payload, headers=headers) as response:
                    results.append({"url": target, "status": response.status})
            except aiohttp.ClientError as exc:
                results.append({"url": target, "status": None, "error": str(exc)})
    return results


def _params(text):
    """Form parameters as a dict; a repeated key (``enabled_events[]``) gives a list."""
    params = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        if key == "key":  # Stripe.js sends the publishable key along
            continue
        if key in params:
            previous = params[key]
            params[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            params[key] = value
    return params


def build_app(state):
    from aiohttp import web

    # Before the server module is imported: it binds its routes to the resources' methods.
    resources = _patch_localstripe(state)
    from localstripe import server

    app = server.app

    def fault_for(request, stage):
        for fault in state.faults:
            if (
                fault["times"] > 0
                and fault["after"] == (stage == "after")
                and fault["method"] in (request.method, "*")
                and re.fullmatch(fault["path"], request.path)
            ):
                fault["times"] -= 1
                return fault
        return None

    async def apply(fault, request, entry):
        entry["fault"] = {k: fault[k] for k in ("status", "sleep", "drop", "after") if fault[k]}
        if fault["sleep"]:
            await asyncio.sleep(fault["sleep"])
        if fault["drop"]:
            # The client sees the connection close without an answer.
            entry["dropped"] = True
            request.transport.close()
            raise asyncio.CancelledError
        if fault["status"]:
            body = fault["body"] or {
                "error": {"type": "api_error", "message": "An unknown error occurred"}
            }
            return web.json_response(body, status=fault["status"])
        return None

    @web.middleware
    async def stripe_layer(request, handler):
        if request.path.startswith("/_test/"):
            # Test controls skip localstripe's key check and the layer below.
            return await request.match_info.handler(request)
        if request.method == "GET":
            # Stripe reads parameters from the body of a GET too; localstripe reads the query.
            # (Read from the stream, not cached, so that the request can still be cloned.)
            params = _params((await request.content.read()).decode())
            if params:
                request = request.clone(rel_url=request.rel_url.update_query(params))
        else:
            params = _params((await request.read()).decode())
        key = request.headers.get("Idempotency-Key") if request.method == "POST" else None
        entry = {
            "method": request.method,
            "path": request.path,
            "params": params or dict(request.query),
            "idempotency_key": key,
            "at": time.time(),
        }
        state.log.append(entry)
        fault = fault_for(request, "before")
        if fault:
            response = await apply(fault, request, entry)
            if response is not None:
                entry["status"] = response.status
                return response
        if key:
            refusal = idempotency_refusal(key, request, params)
            if refusal is not None:
                entry["status"], entry["replayed"] = refusal.status, refusal.status < 400
                return refusal
            state.in_flight.add(key)
        try:
            response = await handler(request)
            entry["status"] = response.status
            if key and isinstance(response, web.Response):
                state.idempotent[key] = {
                    "method": request.method,
                    "path": request.path,
                    "params": params,
                    "status": response.status,
                    "body": response.body,
                }
            fault = fault_for(request, "after")
            if fault:
                replaced = await apply(fault, request, entry)
                if replaced is not None:
                    entry["status"] = replaced.status
                    return replaced
            return response
        finally:
            state.in_flight.discard(key)

    def idempotency_error(status, message):
        return web.json_response(
            {"error": {"type": "idempotency_error", "message": message}}, status=status
        )

    def idempotency_refusal(key, request, params):
        """Stripe's answer to a key already used: the first answer again, or an error."""
        if key in state.in_flight:
            return idempotency_error(
                409, "There is currently another in-progress request using this key."
            )
        first = state.idempotent.get(key)
        if first is None:
            return None
        if (first["method"], first["path"], first["params"]) != (
            request.method,
            request.path,
            params,
        ):
            return idempotency_error(
                400,
                "Keys for idempotent requests can only be used with the same parameters "
                "they were first used with.",
            )
        return web.Response(
            body=first["body"],
            status=first["status"],
            content_type="application/json",
            headers={"Idempotent-Replayed": "true"},
        )

    app.middlewares.insert(0, stripe_layer)

    async def webhook_endpoint_create(request):
        data = await request.post()
        endpoint = {
            "id": "we_" + secrets.token_hex(8),
            "object": "webhook_endpoint",
            "url": data.get("url"),
            "enabled_events": data.getall("enabled_events[]", []) or ["*"],
            "api_version": data.get("api_version"),
            "secret": "whsec_" + secrets.token_hex(16),
            "status": "enabled",
            "livemode": False,
        }
        if not (endpoint["url"] or "").startswith("http"):
            return web.json_response(
                {"error": {"type": "invalid_request_error", "message": "Invalid URL"}},
                status=400,
            )
        state.endpoints[endpoint["id"]] = endpoint
        return web.json_response(endpoint)

    async def webhook_endpoint_list(request):
        data = [dict(e, secret=None) for e in state.endpoints.values()]
        return web.json_response({"object": "list", "data": data, "has_more": False})

    async def control_faults(request):
        if request.method == "DELETE":
            state.faults.clear()
            return web.json_response({"faults": []})
        fault = await request.json()
        fault = {
            "method": fault.get("method", "POST"),
            "path": fault["path"],
            "times": int(fault.get("times", 1)),
            "status": fault.get("status"),
            "body": fault.get("body"),
            "sleep": float(fault.get("sleep") or 0),
            "drop": bool(fault.get("drop")),
            "after": bool(fault.get("after")),
        }
        state.faults.append(fault)
        return web.json_response(fault)

    async def control_requests(request):
        return web.json_response(state.log)

    async def control_events(request):
        return web.json_response([event._export() for event in state.events])

    async def control_deliver(request):
        data = await request.json()
        events = [e for e in state.events if e.id == data["event"]]
        if not events:
            return web.json_response({"error": "unknown event"}, status=404)
        results = await _deliver(state, events[0], url=data.get("url"), secret=data.get("secret"))
        return web.json_response(results)

    async def control_auto(request):
        state.auto_deliver = bool((await request.json()).get("enabled"))
        return web.json_response({"enabled": state.auto_deliver})

    async def control_reset(request):
        resources.store.clear()
        state.__init__()
        return web.json_response({})

    async def control_health(request):
        return web.json_response({"pid": os.getpid()})

    app.router.add_post("/v1/webhook_endpoints", webhook_endpoint_create)
    app.router.add_get("/v1/webhook_endpoints", webhook_endpoint_list)
    app.router.add_route("*", "/_test/faults", control_faults)
    app.router.add_get("/_test/requests", control_requests)
    app.router.add_get("/_test/events", control_events)
    app.router.add_post("/_test/deliver", control_deliver)
    app.router.add_post("/_test/auto_deliver", control_auto)
    app.router.add_post("/_test/reset", control_reset)
    app.router.add_get("/_test/health", control_health)
    return app


async def _serve(port, parent_pid):
    from aiohttp import web

    runner = web.AppRunner(build_app(_State()), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print(f"fake Stripe listening on http://127.0.0.1:{port}", flush=True)
    # Never outlive the test process that started us.
    while os.getppid() == parent_pid:
        await asyncio.sleep(0.5)
    await runner.cleanup()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--parent-pid", type=int, default=os.getppid())
    args = parser.parse_args()
    asyncio.run(_serve(args.port, args.parent_pid))


# ----------------------------------------------------------------------------------------------
# Test side
# ----------------------------------------------------------------------------------------------


class FakeStripe:
    """The fake Stripe server in a subprocess on 127.0.0.1, and its test controls."""

    def __init__(self, port, logfile):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.logfile = Path(logfile)
        self.proc = None

    def start(self, timeout=30):
        self.logfile.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, __file__, "--port", str(self.port)]
        with self.logfile.open("w") as log:
            self.proc = subprocess.Popen(
                [*command, "--parent-pid", str(os.getpid())],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the fake Stripe server exited with {self.proc.returncode}; see {self.logfile}"
                )
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url}/_test/health", timeout=2).ok:
                    return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the fake Stripe server did not answer; see {self.logfile}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _control(self, method, path, payload=None):
        response = requests.request(method, f"{self.url}/_test/{path}", json=payload, timeout=30)
        response.raise_for_status()
        return response.json()

    # Fault injection -----------------------------------------------------------------------

    def fault(
        self,
        path,
        *,
        method="POST",
        times=1,
        status=None,
        body=None,
        sleep=0,
        drop=False,
        after=False,
    ):
        """The next ``times`` requests whose path matches the regular expression ``path``
        answer ``status`` (with ``body``, by default a Stripe ``api_error``), or wait
        ``sleep`` seconds, or see their connection dropped. With ``after``, the fake acts
        first (the payment is made) and the fault hits the answer only."""
        if not (status or sleep or drop):
            raise ValueError("a fault needs a status, a sleep or a drop")
        return self._control(
            "POST",
            "faults",
            {
                "path": path,
                "method": method,
                "times": times,
                "status": status,
                "body": body,
                "sleep": sleep,
                "drop": drop,
                "after": after,
            },
        )

    def clear_faults(self):
        self._control("DELETE", "faults")

    # What happened -------------------------------------------------------------------------

    def requests(self, path=None, method=None):
        """Requests received whose path matches the regular expression ``path``, oldest
        first: ``method``, ``path``, ``params``, ``idempotency_key``, ``status`` (None when the
        client was gone), ``fault``, ``dropped``, ``replayed`` (answered from the idempotency
        cache)."""
        return [
            entry
            for entry in self._control("GET", "requests")
            if (path is None or re.fullmatch(path, entry["path"]))
            and (method is None or entry["method"] == method)
        ]

    def payment_intents(self, secret_key):
        """Every PaymentIntent the fake holds, as Stripe's list API gives them (dicts)."""
        response = requests.get(
            f"{self.url}/v1/payment_intents",
            params={"limit": 100},
            headers={"Authorization": f"Bearer {secret_key}"},
            timeout=30,
        )
        response.raise_for_status()
        return response.json()["data"]

    def events(self, type=None, object_id=None):
        return [
            event
            for event in self._control("GET", "events")
            if (type is None or event["type"] == type)
            and (object_id is None or event["data"]["object"]["id"] == object_id)
        ]

    def deliver(self, event_id, url=None, secret=None):
        """Deliver an event now, signed, to the registered webhook endpoints (or to ``url``
        signed with ``secret``); return the HTTP statuses."""
        return self._control("POST", "deliver", {"event": event_id, "url": url, "secret": secret})

    def auto_deliver(self, enabled=True):
        """Deliver every event by itself a second after it happens, as Stripe does."""
        self._control("POST", "auto_deliver", {"enabled": enabled})

    def reset(self):
        self._control("POST", "reset")

    def client(self, secret_key):
        """The official Stripe client pointed at the fake (no retries: tests see each call)."""
        import stripe

        return stripe.StripeClient(
            secret_key, base_addresses={"api": self.url}, max_network_retries=0
        )


if __name__ == "__main__":
    main()
