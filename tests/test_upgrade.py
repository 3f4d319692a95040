"""A database made with the previous release upgrades to this one with every session's money
unchanged: amounts, states, invoice links, fees (in review, waived, invoiced), an advance
payment and its settlement, a refund, a card hold and a prepaid balance."""

import ast
import os

from harness import REPO, clone_db, drop_db, levels, run_odoo, template
from upgrade import odoo_shell, previous_release, previous_release_addons


def _manifest_version():
    with open(os.path.join(REPO, "bookconnect_therapy", "__manifest__.py"), encoding="utf-8") as f:
        return ast.literal_eval(f.read())["version"]


def test_upgrade_keeps_every_amount_state_and_link(tmp_path):
    prefix = os.environ.get("BOOKCONNECT_TEST_DB", "bookconnect_test")
    db = clone_db(template("nodemo"), f"{prefix}_upgrade")
    commit, version = previous_release()
    old_addons = previous_release_addons(commit, tmp_path / "old")
    try:
        rc, lines = run_odoo(
            db,
            "-i",
            "bookconnect_therapy",
            "--stop-after-init",
            "--without-demo=all",
            "--addons-path",
            old_addons,
            log_name="upgrade-install-old",
        )
        assert rc == 0, "\n".join(levels(lines, "ERROR", "CRITICAL"))
        odoo_shell(db, old_addons, "scenario.py", log_name="upgrade-scenario")
        before = odoo_shell(db, old_addons, "snapshot.py", log_name="upgrade-before")

        rc, lines = run_odoo(
            db, "-u", "bookconnect_therapy", "--stop-after-init", log_name="upgrade-to-head"
        )
        assert rc == 0
        assert not levels(lines, "ERROR", "CRITICAL"), "\n".join(levels(lines, "ERROR"))
        after = odoo_shell(db, None, "snapshot.py", log_name="upgrade-after")
    finally:
        drop_db(db)

    assert version != _manifest_version()
    charges = after.pop("charges")
    assert before["balances"] == after["balances"]
    assert before["sessions"].keys() == after["sessions"].keys()
    for name, old in before["sessions"].items():
        assert after["sessions"][name] == old, name
    # Every invoice and credit note line of a session bills one charge.
    assert charges["UPG-REVIEW"] == [["late_cancel", "review", 20.0, False, False]]
    assert charges["UPG-WAIVED"] == [["late_cancel", "waived", 20.0, False, False]]
    [fee] = charges["UPG-FEE-INVOICED"]
    assert fee[:3] == ["late_cancel", "invoiced", 20.0] and fee[3] and fee[4]
    assert charges["UPG-NO-SHOW"] == [["no_show", "review", 90.0, False, False]]
    assert [c[:2] for c in charges["UPG-UPFRONT"]] == [["booked", "paid"]]
    assert [c[0] for c in charges["UPG-UPFRONT-SHORTER"]] == ["booked", "refund"]
    assert [c[:2] for c in charges["UPG-REFUNDED"]] == [["usage", "paid"], ["refund", "invoiced"]]
    assert [c[:2] for c in charges["UPG-UNPAID"]] == [["usage", "invoiced"]]
    assert [c[:3] for c in charges["UPG-CORRECTED"]] == [["usage", "invoiced", 25.0]]
    assert after["sessions"]["UPG-CORRECTED"]["correction"][0] == 25
    assert [c[:2] for c in charges["UPG-BALANCE"]] == [["usage", "paid"]]
    assert charges["UPG-HOLD"] == []
    assert all(c[4] for name in ("UPG-REFUNDED", "UPG-BALANCE") for c in charges[name])
