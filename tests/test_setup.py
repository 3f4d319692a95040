"""The set-up finds Odoo 18.0 or stops at once saying how to provide it."""

import os
import subprocess
import time

from harness import REPO


def run_setup(tmp_path, **env):
    started = time.monotonic()
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "setup.sh")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={
            **{k: v for k, v in os.environ.items() if k != "ODOO_SRC"},
            "BOOKCONNECT_STATE": str(tmp_path / "state"),
            **env,
        },
    )
    return result, time.monotonic() - started


def test_a_wrong_odoo_src_is_an_error_not_a_reason_to_look_elsewhere(tmp_path):
    empty = tmp_path / "not-odoo"
    empty.mkdir()
    result, seconds = run_setup(tmp_path, ODOO_SRC=str(empty))
    assert result.returncode != 0
    assert f"ODOO_SRC={empty} holds no Odoo 18.0 source" in result.stderr
    assert "install-odoo-source" in result.stderr  # says how to get it
    assert seconds < 60, "it must not hang waiting for the network"


def test_no_source_and_no_network_fails_at_once_with_instructions(tmp_path):
    result, seconds = run_setup(
        tmp_path,
        BOOKCONNECT_ODOO_CANDIDATES=str(tmp_path / "nowhere"),
        BOOKCONNECT_ODOO_UPSTREAM="https://127.0.0.1:9/odoo.git",
    )
    assert result.returncode != 0
    assert "no Odoo 18.0 source" in result.stderr
    assert "ODOO_SRC=/path/to/odoo make setup" in result.stderr
    assert seconds < 60, "it must not hang waiting for the network"
    assert not (tmp_path / "state" / "odoo.conf").exists(), "nothing half-written"
