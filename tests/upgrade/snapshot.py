# Run by `odoo-bin shell`: what the upgrade scenario's sessions cost and owe, read through the
# addon's code (the previous release's or this one's), written as JSON to UPGRADE_SNAPSHOT.
import json
import os

sessions = env["bookconnect.therapy.session"].search([("name", "=like", "UPG-%")])  # noqa: F821


def fee_of(session):
    if "fee_charge_id" in session._fields:
        fee = session.fee_charge_id
        return [session.fee_state, fee.kind or False, fee.amount, fee.due_at, fee.waiver_reason]
    return [
        session.fee_state,
        session.fee_kind,
        session.fee_amount if session.fee_state else 0.0,
        session.fee_due_at,
        session.fee_waiver_reason,
    ]


def moves_of(session):
    return [
        [
            m.name,
            m.move_type,
            m.state,
            m.payment_state,
            m.amount_total,
            m.amount_residual,
            m.reversed_entry_id.name or False,
            [line.name for line in m.invoice_line_ids],
        ]
        for m in session.invoice_ids.sorted("id")
    ]


snapshot = {
    "sessions": {
        s.name: {
            "state": s.state,
            "amount": s.amount,
            "invoice": s.invoice_id.name or False,
            "billing_status": s.billing_status,
            "fee": fee_of(s),
            "correction": [s.corrected_minutes, s.correction_reason, s.corrected_by_id.login],
            "moves": moves_of(s),
            "money_lines": [
                # The portal link without its token: reading it makes one, not saved here.
                {
                    **{k: v for k, v in line.items() if k != "currency"},
                    "url": line["url"].split("?")[0],
                }
                for line in s._client_money_lines(tz="UTC")
            ],
        }
        for s in sessions
    },
    "balances": {
        p.name: (
            env["bookconnect.prepaid.balance"]._balances(p, env.company)  # noqa: F821
            if "bookconnect.prepaid.balance" in env  # noqa: F821
            else p._bookconnect_balances(env.company)  # noqa: F821
        )[p]
        for p in sessions.partner_id.sorted("name")
    },
}
if "charge_ids" in sessions._fields:
    snapshot["charges"] = {
        s.name: [
            [c.kind, c.state, c.amount, c.move_id.name or False, bool(c.move_line_id)]
            for c in s.charge_ids.sorted("id")
        ]
        for s in sessions
    }
with open(os.environ["UPGRADE_SNAPSHOT"], "w", encoding="utf-8") as handle:
    json.dump(snapshot, handle, default=str, indent=1, sort_keys=True)
