#!/usr/bin/env bash
# Lint: ruff (lint and format check) and pylint-odoo with the OCA mandatory checks.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
bash "$REPO/scripts/setup.sh"
cd "$REPO"
"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
"$VENV/bin/pylint" --rcfile=.pylintrc bookconnect_therapy
log "lint passed"
