"""The bench's data: a practice (therapists, clients with saved cards, a per-minute policy that
charges the card, Odoo's Stripe provider in test mode), finished sessions with metered calls,
and, for the peer, confirmed sale orders of one line. Set-up only: nothing here is measured.

Everything is deterministic: session ``i`` always has the same therapist, client, times and
call events.
"""

from datetime import timedelta

from odoo import Command, fields
from odoo.tools import SQL

THERAPISTS = 20
CLIENTS = 200
BOOKED_MINUTES = 50
RATE_PER_MINUTE = 1.60
CHUNK = 500
# Set-up writes without chatter: it is not what is measured.
QUIET = {
    "tracking_disable": True,
    "mail_create_nolog": True,
    "mail_create_nosubscribe": True,
    "mail_notrack": True,
    "no_reset_password": True,
}


def practice(env):
    """Create the practice once: therapists, clients, policy, Stripe provider and cards.

    :return: dict with ``therapists`` (res.users), ``clients`` (res.partner), ``policy``,
        ``provider`` (payment.provider), ``tokens`` (payment.token) and ``peer_product``.
    """
    env = env(context=dict(env.context, **QUIET))
    company = env.company
    group = env.ref("bookconnect_therapy.group_therapist")
    therapists = env["res.users"].create(
        [
            {
                "name": f"Therapist {i:02d}",
                "login": f"bench_therapist_{i:02d}",
                "email": f"therapist{i:02d}@bench.example.com",
                "tz": "Europe/Brussels",
                "groups_id": [Command.set([env.ref("base.group_user").id, group.id])],
            }
            for i in range(THERAPISTS)
        ]
    )
    clients = env["res.partner"].create(
        [
            {
                "name": f"Client {i:03d}",
                "email": f"client{i:03d}@bench.example.com",
                "lang": "en_US",
                "tz": "Europe/Brussels",
            }
            for i in range(CLIENTS)
        ]
    )
    policy = env["bookconnect.billing.policy"].create(
        {
            "name": "Per minute, card charged after the session",
            "mode": "minute",
            "rate": RATE_PER_MINUTE,
            "currency_id": company.currency_id.id,
            "grace_minutes": 3,
            "rounding_increment": 1,
            "rounding_method": "up",
            "collection": "card",
        }
    )
    company.bookconnect_policy_id = policy

    card = env.ref("payment.payment_method_card")
    provider = env.ref("payment.payment_provider_stripe")
    provider.write(
        {
            "state": "test",
            "stripe_secret_key": "sk_test_bench",
            "stripe_publishable_key": "pk_test_bench",
            "stripe_webhook_secret": "whsec_bench",
            "payment_method_ids": [Command.set(card.ids)],
            "allow_tokenization": True,
        }
    )
    card.write({"active": True, "support_tokenization": True})
    tokens = env["payment.token"].create(
        [
            {
                "provider_id": provider.id,
                "payment_method_id": card.id,
                "partner_id": client.id,
                "provider_ref": f"cus_bench{client.id}",
                "stripe_payment_method": f"pm_bench{client.id}",
                "payment_details": "4242",
            }
            for client in clients
        ]
    )
    # A standard-rated practice: the invoiced product carries the company's sales tax. The peer
    # sells the same service, at the same price, taxes and income account, by sale order.
    minute = policy.product_id
    product_values = {
        "type": "service",
        "uom_id": minute.uom_id.id,
        "uom_po_id": minute.uom_id.id,
        "list_price": RATE_PER_MINUTE,
        "categ_id": minute.categ_id.id,
        "taxes_id": [Command.set(company.account_sale_tax_id.ids)],
    }
    policy.product_id = env["product.product"].create(
        {**product_values, "name": "Online therapy (per minute, taxed)"}
    )
    peer_product = env["product.product"].create(
        {**product_values, "name": "Online consultation (sale order)", "invoice_policy": "order"}
    )
    env.flush_all()
    return {
        "therapists": therapists,
        "clients": clients,
        "policy": policy,
        "provider": provider,
        "tokens": tokens,
        "peer_product": peer_product,
    }


def call_events(index, start, stop):
    """The external video service's join/leave events of session ``index``.

    Both join; the client drops and reconnects 0 to 3 times (a minute away each time); both
    leave at the end. One session in ten lost the client's last "left" event: its connection
    stays open and the sweep closes it at the scheduled end. 3 to 10 events per session.

    :return: list of ``(event uid, kind, role, at)``.
    """
    reconnects = index % 4
    jitter = timedelta(seconds=index % 17)
    events = [
        ("t-join-0", "joined", "therapist", start + jitter),
        ("c-join-0", "joined", "client", start + timedelta(minutes=1) + jitter),
    ]
    for k in range(1, reconnects + 1):
        drop = start + timedelta(minutes=1 + 11 * k, seconds=index % 29)
        events.append((f"c-left-{k}", "left", "client", drop))
        events.append((f"c-join-{k}", "joined", "client", drop + timedelta(minutes=1)))
    events.append(("t-left-end", "left", "therapist", stop - timedelta(seconds=index % 13)))
    if index % 10 != 9:
        events.append(("c-left-end", "left", "client", stop - timedelta(seconds=index % 7)))
    return events


def finished_sessions(env, data, count, first_index):
    """Book ``count`` sessions in the past, record their calls and leave them in progress, as
    the video service would have: the sweep is what ends them.

    Sessions are created in batches; the call events are inserted in bulk and each batch of
    calls rebuilds its segments once (the same code the events endpoint runs).

    :return: the sessions (bookconnect.therapy.session), in progress.
    """
    env = env(context=dict(env.context, **QUIET))
    Session = env["bookconnect.therapy.session"]
    therapists, clients = data["therapists"], data["clients"]
    # Hourly slots per therapist, ending two hours ago: every session is overdue for the sweep.
    slots = -(-count // THERAPISTS)
    first_slot = fields.Datetime.now().replace(minute=0, second=0, microsecond=0) - timedelta(
        hours=slots + 2
    )
    sessions = Session.browse()
    for chunk_start in range(0, count, CHUNK):
        vals_list = []
        for i in range(chunk_start, min(chunk_start + CHUNK, count)):
            start = first_slot + timedelta(hours=i // THERAPISTS)
            vals_list.append(
                {
                    "therapist_id": therapists[i % THERAPISTS].id,
                    "partner_id": clients[(first_index + i) % CLIENTS].id,
                    "start": start,
                    "stop": start + timedelta(minutes=BOOKED_MINUTES),
                    "channel": "video",
                }
            )
        batch = Session.create(vals_list)
        batch._confirm()
        _insert_events(env, batch, first_index + chunk_start)
        batch.call_id._rebuild_external_segments()
        env.flush_all()
        env.cr.commit()
        env.invalidate_all()
        sessions |= batch
    return sessions


def _insert_events(env, sessions, first_index):
    rows = []
    uid = env.uid
    now = fields.Datetime.now()
    for offset, session in enumerate(sessions):
        call = session.call_id
        for event_uid, kind, role, at in call_events(
            first_index + offset, session.start, session.stop
        ):
            rows.append(
                (
                    call.id,
                    session.id,
                    session.therapist_id.id,
                    session.company_id.id,
                    event_uid,
                    kind,
                    role,
                    at,
                    uid,
                    now,
                    uid,
                    now,
                )
            )
    env.flush_all()
    env.cr.execute_values(
        "INSERT INTO bookconnect_call_event (call_id, session_id, therapist_id, company_id,"
        " event_uid, kind, role, at, create_uid, create_date, write_uid, write_date) VALUES %s",
        rows,
        page_size=1000,
    )
    env.invalidate_all()


def confirmed_orders(env, data, count, first_index):
    """``count`` confirmed sale orders of one line each: the same service, quantity and
    customers as the sessions, ready to invoice. Created confirmed (``state`` sale) rather
    than through ``action_confirm``, whose messages and follower subscriptions are set-up
    time the peer's invoicing does not depend on.

    :return: the orders (sale.order).
    """
    env = env(context=dict(env.context, **QUIET))
    product = data["peer_product"]
    clients = data["clients"]
    Order = env["sale.order"]
    orders = Order.browse()
    for chunk_start in range(0, count, CHUNK):
        batch = Order.create(
            [
                {
                    "partner_id": clients[(first_index + i) % CLIENTS].id,
                    "state": "sale",
                    "order_line": [
                        Command.create(
                            {
                                "product_id": product.id,
                                # What the session of the same index bills.
                                "product_uom_qty": BOOKED_MINUTES - 1 - (first_index + i) % 4,
                                "price_unit": RATE_PER_MINUTE,
                            }
                        )
                    ],
                }
                for i in range(chunk_start, min(chunk_start + CHUNK, count))
            ]
        )
        env.flush_all()
        env.cr.commit()
        env.invalidate_all()
        orders |= batch
    return orders


def analyze(env):
    """Refresh PostgreSQL's statistics after bulk set-up, as autovacuum would in production."""
    env.cr.commit()
    env.cr.execute(SQL("ANALYZE"))
    env.cr.commit()
