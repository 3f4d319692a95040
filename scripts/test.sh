#!/usr/bin/env bash
# The test command: set-up, then the addon's Odoo tests on a new database, then the system tests.
# Fails on any failed, erroring or (browser) skipped test and on any ERROR/CRITICAL line in Odoo's
# log; ends with one line "N passed, N failed[, N skipped]".
#   TEST_TAGS   Odoo test tags (default /bookconnect_therapy)
#   STOCK_TAGS  Odoo's own post-install tests run afterwards on the same database when TEST_TAGS
#               is unset (default: payment, payment_stripe, account_payment, calendar, portal;
#               empty: none)
#   PYTEST_ARGS extra arguments for pytest (e.g. "-k portal"); SKIP_PYTEST=1 skips the system tests
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
source "$REPO/scripts/db.sh"

bash "$REPO/scripts/setup.sh"

LOGS=$STATE/logs
mkdir -p "$LOGS"
DEPENDS=$(addon_depends)
# sms is optional for the addon: the test database has it so that both paths are tested.
TEST_MODULES=$DEPENDS,sms
TEST_DB=${BOOKCONNECT_TEST_DB:-bookconnect_test}
ODOO_LOG=$LOGS/odoo-tests.log
PYTEST_XML=$LOGS/pytest.xml
# Reliability figures (concurrency, faults, hostile input, access) written by the tests.
export BOOKCONNECT_RELIABILITY_FILE=$LOGS/reliability.jsonl
rm -f "$ODOO_LOG" "$PYTEST_XML" "$BOOKCONNECT_RELIABILITY_FILE"

template=$(ensure_template demo "$TEST_MODULES")
clone_db "$template" "$TEST_DB"

log "Odoo tests: installing bookconnect_therapy on $TEST_DB with --test-enable"
set +e
odoo_bin -d "$TEST_DB" -i bookconnect_therapy --test-enable --stop-after-init \
  --test-tags "${TEST_TAGS:-/bookconnect_therapy}" --http-port=$((HTTP_PORT + 100)) \
  --gevent-port=$((HTTP_PORT + 103)) --log-level=info \
  --log-handler=werkzeug:WARNING 2>&1 | tee "$ODOO_LOG" |
  grep --line-buffered -E ' (ERROR|CRITICAL|WARNING) |odoo\.tests\.result|(FAIL|ERROR):|Ran [0-9]+ tests|Starting |post-tests'
odoo_rc=${PIPESTATUS[0]}
set -e

# Odoo's own tests of the modules the addon extends, as Odoo runs them: on a new database where
# the addon and its dependencies are installed in one run, each module's at-install tests while
# it installs, then every post-install test with the addon installed.
STOCK_TAGS=${STOCK_TAGS-/payment,/payment_stripe,/account_payment,/calendar,/portal}
if [ -n "$STOCK_TAGS" ] && [ -z "${TEST_TAGS:-}" ]; then
  STOCK_DB=${TEST_DB}_stock
  drop_db "$STOCK_DB"
  log "Odoo's own tests of $STOCK_TAGS, installing bookconnect_therapy on a new database"
  set +e
  odoo_bin -d "$STOCK_DB" -i bookconnect_therapy --test-enable --stop-after-init \
    --test-tags "$STOCK_TAGS" --http-port=$((HTTP_PORT + 100)) \
    --gevent-port=$((HTTP_PORT + 103)) --log-level=info \
    --log-handler=werkzeug:WARNING 2>&1 | tee -a "$ODOO_LOG" |
    grep --line-buffered -E ' (ERROR|CRITICAL) |odoo\.tests\.result|(FAIL|ERROR):|Ran [0-9]+ tests|post-tests'
  stock_rc=${PIPESTATUS[0]}
  set -e
  drop_db "$STOCK_DB"
  [ "$stock_rc" = 0 ] || odoo_rc=$stock_rc
fi

pytest_rc=0
if [ "${SKIP_PYTEST:-0}" != 1 ]; then
  log "system tests: pytest tests/"
  export BOOKCONNECT_TEMPLATE_DEMO=$template
  BOOKCONNECT_TEMPLATE_NODEMO=$(ensure_template nodemo "$DEPENDS")
  export BOOKCONNECT_TEMPLATE_NODEMO
  set +e
  # shellcheck disable=SC2086
  (cd "$REPO" && "$PY" -m pytest tests -p no:cacheprovider --junitxml="$PYTEST_XML" -ra ${PYTEST_ARGS:-})
  pytest_rc=$?
  set -e
fi

"$PY" "$REPO/scripts/summarize_tests.py" --odoo-log "$ODOO_LOG" --odoo-rc "$odoo_rc" \
  --pytest-xml "$PYTEST_XML" --pytest-rc "$pytest_rc" ${SKIP_PYTEST:+--no-pytest} \
  --reliability "$BOOKCONNECT_RELIABILITY_FILE"
