"""Who may read and write what: the one table of the access checks, shared by the ORM matrix
(``test_access_matrix.py``) and the system test over JSON-RPC (``tests/test_access.py``, which
loads this file by its path). Plain data: no Odoo import."""

R, W = "read", "write"
# record type -> fields read
READS = {
    "session": ["name", "start", "amount"],
    "call": ["billable_seconds"],
    "segment": ["start", "end"],
    "policy": ["name", "rate"],
    "invoice": ["name", "amount_total"],
    "transaction": ["reference", "amount"],
    "saved card": ["payment_details"],
}
# record type -> values written. Harmless: what an allowed write changes does not matter to
# the other checks (the notes keep their clinical word).
WRITES = {
    "session": {"note": "<p>Clinical: discussed sleep</p>"},
    "call": {"session_id": None},  # its own session, filled in by each test
    "segment": {"role": "therapist"},
    "policy": {"sequence": 10},
    "invoice": {"ref": "x"},
    "transaction": {"state_message": "x"},
    "saved card": {"payment_details": "4242"},
}
# role -> record type -> (can read, can write)
MATRIX = {
    "therapist A": {
        "session": (1, 1),
        "call": (1, 0),
        "segment": (1, 0),
        "policy": (1, 0),
        "invoice": (0, 0),
        "transaction": (0, 0),
        "saved card": (0, 0),
    },
    "therapist B": {
        "session": (0, 0),
        "call": (0, 0),
        "segment": (0, 0),
        "policy": (1, 0),
        "invoice": (0, 0),
        "transaction": (0, 0),
        "saved card": (0, 0),
    },
    "practice manager": {
        "session": (1, 1),
        "call": (1, 0),
        "segment": (1, 0),
        "policy": (1, 1),
        "invoice": (0, 0),
        "transaction": (0, 0),
        "saved card": (0, 0),
    },
    "accountant": {
        "session": (0, 0),
        "call": (0, 0),
        "segment": (0, 0),
        "policy": (1, 0),
        "invoice": (1, 1),
        "transaction": (1, 1),
        "saved card": (1, 0),
    },
    "portal client X": {
        "session": (1, 0),
        "call": (0, 0),
        "segment": (0, 0),
        "policy": (0, 0),
        "invoice": (1, 0),
        "transaction": (0, 0),
        "saved card": (1, 0),
    },
    "portal client Y": dict.fromkeys(READS, (0, 0)),
    "public visitor": dict.fromkeys(READS, (0, 0)),
}


def writes_for(kind, session_id):
    """The values written to a record of ``kind``, for the session ``session_id``."""
    values = dict(WRITES[kind])
    if "session_id" in values:
        values["session_id"] = session_id
    return values
