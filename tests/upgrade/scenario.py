# Run by `odoo-bin shell` on a database with the previous release of the addon: sessions in
# every money state, made through that release's own code. `env` is the shell's.
from datetime import timedelta

from odoo import Command, fields

now = fields.Datetime.now().replace(microsecond=0)
company = env.company  # noqa: F821
Policy = env["bookconnect.billing.policy"]  # noqa: F821
Session = env["bookconnect.therapy.session"]  # noqa: F821
group = env.ref("bookconnect_therapy.group_practice_manager")  # noqa: F821
manager = env["res.users"].create(  # noqa: F821
    {
        "name": "Upgrade Manager",
        "login": "upgrade_manager",
        "email": "manager@example.com",
        "groups_id": [Command.link(group.id)],
    }
)
therapist = manager
clients = {
    name: env["res.partner"].create({"name": f"Client {name}", "email": f"{name}@example.com"})  # noqa: F821
    for name in ("fees", "full", "card", "balance", "hold")
}
common = {"company_id": company.id, "currency_id": company.currency_id.id}
fees = Policy.create(
    {
        **common,
        "name": "Upgrade fees",
        "mode": "session",
        "rate": 90.0,
        "collection": "portal",
        "free_cancel_hours": 24,
        "late_fee_kind": "fixed",
        "late_fee_fixed": 20.0,
        "no_show_fee_kind": "percent",
        "no_show_fee_percent": 100,
        "no_show_delay_minutes": 15,
        "review_hours": 24,
        "waive_first_offence": False,
    }
)
full = Policy.create(
    {
        **common,
        "name": "Upgrade full",
        "mode": "minute",
        "rate": 1.0,
        "collection": "portal",
        "prepayment": "full",
    }
)
portal = Policy.create(
    {**common, "name": "Upgrade portal", "mode": "minute", "rate": 1.0, "collection": "portal"}
)
balance = Policy.create(
    {
        **common,
        "name": "Upgrade balance",
        "mode": "minute",
        "rate": 1.0,
        "collection": "portal",
        "prepayment": "balance",
    }
)


def book(name, client, policy, start, minutes=50):
    return Session.create(
        {
            "name": name,
            "therapist_id": therapist.id,
            "partner_id": client.id,
            "policy_id": policy.id,
            "start": start,
            "stop": start + timedelta(minutes=minutes),
        }
    )


def held(session, minutes):
    for uid, kind, role, minute in [
        ("t1", "joined", "therapist", 0),
        ("c1", "joined", "client", 0),
        ("c2", "left", "client", minutes),
        ("t2", "left", "therapist", minutes),
    ]:
        at = session.start + timedelta(minutes=minute)
        session.call_id._record_external_event(f"{session.name}-{uid}", kind, role, at)
    session.with_user(manager).action_end_session()
    return session


def pay(invoices):
    return (
        env["account.payment.register"]  # noqa: F821
        .with_context(active_model="account.move", active_ids=invoices.ids)
        .create({})
        ._create_payments()
    )


def top_up(client, amount):
    payment = env["account.payment"].create(  # noqa: F821
        {
            "partner_id": client.id,
            "partner_type": "customer",
            "payment_type": "inbound",
            "amount": amount,
            "memo": "Prepaid balance top-up",
        }
    )
    payment.action_post()


# Fees: one in review, one waived, one invoiced (its review over), a no-show in review.
in_review = book("UPG-REVIEW", clients["fees"], fees, now + timedelta(hours=2))
in_review._cancel(by="client")
waived = book("UPG-WAIVED", clients["fees"], fees, now + timedelta(hours=3))
waived._cancel(by="client")
waived.with_user(manager)._waive_fee("Snowstorm")
invoiced = book("UPG-FEE-INVOICED", clients["fees"], fees, now + timedelta(hours=4))
invoiced._cancel(by="client")
invoiced.with_context(bookconnect_sync=True).write({"fee_due_at": now - timedelta(minutes=1)})
Session._cron_charge_fees()
no_show = book("UPG-NO-SHOW", clients["fees"], fees, now - timedelta(hours=1))
no_show._mark_no_show()
# Paid in full at booking: one to come (paid), one held shorter (a credit note).
upfront = book("UPG-UPFRONT", clients["full"], full, now + timedelta(days=2))
pay(upfront.invoice_id)
shorter = book("UPG-UPFRONT-SHORTER", clients["full"], full, now - timedelta(hours=3))
pay(shorter.invoice_id)
held(shorter, 30)
# Paid, then partly refunded.
refunded = held(book("UPG-REFUNDED", clients["card"], portal, now - timedelta(hours=5)), 35)
pay(refunded.invoice_id)
refunded.with_user(manager)._refund(10.0, "Audio trouble")
unpaid = held(book("UPG-UNPAID", clients["card"], portal, now - timedelta(hours=7)), 20)
# The therapist corrected the measured time before the end.
corrected = book("UPG-CORRECTED", clients["card"], portal, now - timedelta(hours=11))
corrected.with_user(manager)._set_correction(25, "Continued by phone")
held(corrected, 20)
# A prepaid balance: two top-ups and a session drawn from it.
top_up(clients["balance"], 100.0)
held(book("UPG-BALANCE", clients["balance"], balance, now - timedelta(hours=9)), 35)
top_up(clients["balance"], 20.0)
# A card hold on a session to come.
hold_session = book("UPG-HOLD", clients["hold"], portal, now + timedelta(days=1))
stripe = env.ref("payment.payment_provider_stripe")  # noqa: F821
env["payment.transaction"].create(  # noqa: F821
    {
        "provider_id": stripe.id,
        "payment_method_id": env.ref("payment.payment_method_card").id,  # noqa: F821
        "reference": "UPG-HOLD-1",
        "amount": 50.0,
        "currency_id": company.currency_id.id,
        "partner_id": clients["hold"].id,
        "state": "authorized",
        "bookconnect_purpose": "hold",
        "bookconnect_session_id": hold_session.id,
    }
)
env.cr.commit()  # noqa: F821
