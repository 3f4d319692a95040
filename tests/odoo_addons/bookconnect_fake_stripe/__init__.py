"""Loaded only by the system tests' Odoo server, as a server-wide module
(``--load=base,web,bookconnect_fake_stripe``); never installed in a database.

Odoo's ``payment_stripe`` has Stripe's API address written in. This module swaps the
``requests`` that ``payment_stripe``'s provider model calls for a proxy that sends requests for
``https://api.stripe.com/`` to the fake Stripe server named by ``BOOKCONNECT_FAKE_STRIPE_URL``
(on 127.0.0.1) and passes everything else through unchanged. What Odoo sends, and how it reads
the answers, stays exactly what production does.

``BOOKCONNECT_FAKE_STRIPE_TIMEOUT`` (seconds), when set, shortens the timeout of those requests
(Odoo waits 60 s), so that a test can make Stripe answer too late in a few seconds.
"""

import logging
import os
from urllib.parse import urlsplit

import requests

_logger = logging.getLogger(__name__)

STRIPE_API = "https://api.stripe.com/"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def fake_url():
    url = os.environ.get("BOOKCONNECT_FAKE_STRIPE_URL", "")
    if urlsplit(url).hostname not in LOOPBACK:
        # Never let a test server talk to the real Stripe, nor to anything off this machine.
        raise requests.exceptions.ConnectionError(
            f"BOOKCONNECT_FAKE_STRIPE_URL must be a 127.0.0.1 URL, not {url!r}"
        )
    return url.rstrip("/") + "/"


class StripeToFake:
    """Stands in for the ``requests`` module inside ``payment_stripe``'s provider model."""

    def __init__(self, module):
        self._module = module

    def __getattr__(self, name):
        return getattr(self._module, name)

    def request(self, method, url, *args, **kwargs):
        if url.startswith(STRIPE_API):
            url = fake_url() + url[len(STRIPE_API) :]
            cap = os.environ.get("BOOKCONNECT_FAKE_STRIPE_TIMEOUT")
            if cap:
                kwargs["timeout"] = min(float(cap), kwargs.get("timeout") or float(cap))
        return self._module.request(method, url, *args, **kwargs)


def post_load():
    from odoo.addons.payment_stripe.models import payment_provider

    payment_provider.requests = StripeToFake(requests)
    try:
        _logger.info("Stripe API calls go to the fake Stripe server at %s", fake_url())
    except requests.exceptions.ConnectionError as exc:
        _logger.critical("every Stripe API call will fail: %s", exc)
