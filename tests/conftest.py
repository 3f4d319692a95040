import sys
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

sys.path.insert(0, str(Path(__file__).parent))

ACCOUNTANT = ("accountant", "accountant")
# A practice manager and nothing else (the demo's also keeps the books).
MANAGER = ("practice_manager", "manager-pass-1")


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "after_all: runs after every other system test (it reads what they left: their logs)",
    )


def pytest_collection_modifyitems(items):
    # A stable sort: the tests marked after_all go last, the others keep their order.
    items.sort(key=lambda item: item.get_closest_marker("after_all") is not None)


@pytest.fixture(scope="session")
def practice():
    """One practice on a real server and the fake Stripe, shared by the security tests
    (access over RPC and HTTP, hostile input, secrets): the demo's people (its accountant
    among them) plus a practice manager who keeps no books, a card saved by the client, and
    for each therapist a session held and ended (the first therapist's, with the demo client,
    invoiced and paid by card, with notes).
    """
    from stripe_stack import StripeStack, odoo_datetime, utcnow

    with StripeStack("security") as stack:
        admin = stack.admin
        # The demo's accountant: Invoicing rights only.
        accountant_id = admin("res.users", "search", [("login", "=", ACCOUNTANT[0])])[0]
        admin(
            "res.users",
            "create",
            {
                "name": "Pat Manager",
                "login": MANAGER[0],
                "password": MANAGER[1],
                "email": "pat@example.com",
                "groups_id": [
                    (
                        6,
                        0,
                        [
                            admin.ref("base.group_user"),
                            admin.ref("bookconnect_therapy.group_practice_manager"),
                        ],
                    )
                ],
            },
        )
        client_x, client_y = stack.partner("client"), stack.partner("client2")
        token = stack.save_card("client", "client", "pm_card_visa")
        policy = stack.policy(name="Security: per minute, card", mode="minute", rate=1.0)
        start = utcnow().replace(second=0) - timedelta(minutes=40)
        mine = stack.book(client_x, policy, start)
        stack.meet(mine, 30)
        stack.therapist(
            "bookconnect.therapy.session",
            "write",
            [mine["id"]],
            {"note": "<p>Clinical: discussed sleep</p>"},
        )
        stack.end(mine)
        therapist2 = stack.server.rpc("therapist2", "therapist2")
        theirs = therapist2(
            "bookconnect.therapy.session",
            "create",
            {
                "therapist_id": therapist2.uid,
                "partner_id": client_y,
                "policy_id": policy,
                "start": odoo_datetime(mine["start"]),
                "stop": odoo_datetime(mine["start"] + timedelta(minutes=50)),
            },
        )
        yield SimpleNamespace(
            stack=stack,
            accountant_id=accountant_id,
            client_x=client_x,
            client_y=client_y,
            token=token,
            policy=policy,
            session=admin.read(
                "bookconnect.therapy.session",
                mine["id"],
                [
                    "name",
                    "state",
                    "access_token",
                    "call_id",
                    "segment_ids",
                    "invoice_id",
                    "transaction_ids",
                    "calendar_event_id",
                ],
            ),
            their_session=admin.read(
                "bookconnect.therapy.session", theirs, ["name", "state", "access_token"]
            ),
        )
