"""The addon installs on a fresh database, with and without demo data, without a warning."""

import os

import pytest
from harness import clone_db, drop_db, levels, psql, run_odoo, template


@pytest.mark.parametrize("kind", ["demo", "nodemo"])
def test_install_is_clean(kind):
    prefix = os.environ.get("BOOKCONNECT_TEST_DB", "bookconnect_test")
    db = clone_db(template(kind), f"{prefix}_install_{kind}")
    try:
        args = ["-i", "bookconnect_therapy", "--stop-after-init"]
        if kind == "nodemo":
            args.append("--without-demo=all")
        rc, lines = run_odoo(db, *args, log_name=f"install-{kind}")
        assert rc == 0
        assert not levels(lines, "WARNING", "ERROR", "CRITICAL"), "\n".join(
            levels(lines, "WARNING", "ERROR", "CRITICAL")
        )
        state = psql(db, "SELECT state FROM ir_module_module WHERE name = 'bookconnect_therapy'")
        assert state == "installed"
        policies = int(psql(db, "SELECT count(*) FROM bookconnect_billing_policy"))
        demo_policies = int(
            psql(
                db,
                "SELECT count(*) FROM ir_model_data WHERE module = 'bookconnect_therapy'"
                " AND model = 'bookconnect.billing.policy'",
            )
        )
        if kind == "demo":
            assert demo_policies >= 3 and policies >= 3
            modes = psql(
                db,
                "SELECT string_agg(DISTINCT mode, ',' ORDER BY mode)"
                " FROM bookconnect_billing_policy",
            )
            assert modes == "hour,minute,session"
        else:
            assert demo_policies == 0
    finally:
        drop_db(db)
