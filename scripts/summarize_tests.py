"""Reads Odoo's test log and pytest's JUnit report; prints one summary line; exits non-zero on
any failure.

Odoo's runner ends with "N failed, M error(s) of T tests when loading database ..."; skipped
tests appear as "skipped <test> : <reason>". A skipped browser tour counts as failed: it only
skips when the machine lacks Chromium or websocket-client, which the set-up installs. Any ERROR
or CRITICAL line in Odoo's log is a failure too, even when every test passed.
"""

import argparse
import json
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ \d+ (?P<level>[A-Z]+) ")
RESULT = re.compile(r"(\d+) failed, (\d+) error\(s\) of (\d+) tests when loading database")
SKIPPED = re.compile(r" INFO \S+ (?P<logger>\S+): skipped (?P<test>.+?) : (?P<reason>.*)$")
BROWSER_SKIP = re.compile(r"chrom|websocket|browser|devtools", re.IGNORECASE)


def read_odoo(path, rc):
    lines = Path(path).read_text(errors="replace").splitlines() if Path(path).exists() else []
    problems, failed_total, run_total, seen_result = [], 0, 0, False
    skipped, browser_skips = 0, []
    for line in lines:
        match = LOG_LINE.match(line)
        if match and match["level"] in ("ERROR", "CRITICAL"):
            problems.append(line)
        result = RESULT.search(line)
        if result:
            seen_result = True
            # One line per Odoo run (the addon's tests, then Odoo's own): they add up.
            failed_total += int(result[1]) + int(result[2])
            run_total += int(result[3])
        skip = SKIPPED.search(line)
        if skip:
            if BROWSER_SKIP.search(skip["reason"]):
                browser_skips.append(line)
            else:
                skipped += 1
    if not seen_result:
        problems.append("Odoo printed no test result: the Odoo tests did not run")
    if seen_result and run_total == 0:
        problems.append("Odoo ran no test")
    if rc != 0 and not failed_total:
        problems.append(f"Odoo exited with status {rc}")
    passed = max(run_total - failed_total - skipped - len(browser_skips), 0)
    failed = failed_total + len(browser_skips)
    return passed, failed, skipped, problems, browser_skips


def read_pytest(path, rc):
    if not Path(path).exists():
        return 0, 0, 0, [f"pytest wrote no report (exit status {rc})"]
    passed = failed = skipped = 0
    for suite in ET.parse(path).getroot().iter("testsuite"):
        tests, fail, err, skip = (
            int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")
        )
        passed += tests - fail - err - skip
        failed += fail + err
        skipped += skip
    problems = []
    if rc not in (0, 5) and not failed:
        problems.append(f"pytest exited with status {rc}")
    return passed, failed, skipped, problems


RELIABILITY_LINES = [
    (
        "concurrency",
        "concurrent requests made {requests}; invoices expected {expected}, found {found}",
    ),
    ("faults", "faults injected {injected}, survived {survived}"),
    ("hostile", "hostile inputs tried {tried}, cleanly refused {refused}"),
    ("access", "access checks run {run}, passed {passed}"),
]


def read_reliability(path):
    """Sum the figures the tests recorded, per check."""
    totals = {}
    if not path or not Path(path).exists():
        return totals
    for line in Path(path).read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        figures = totals.setdefault(record.pop("check", "?"), {})
        for key, value in record.items():
            if isinstance(value, (int, float)):
                figures[key] = figures.get(key, 0) + value
    return totals


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--odoo-log", required=True)
    parser.add_argument("--odoo-rc", type=int, required=True)
    parser.add_argument("--pytest-xml")
    parser.add_argument("--pytest-rc", type=int, default=0)
    parser.add_argument("--no-pytest", action="store_true")
    parser.add_argument("--reliability")
    args = parser.parse_args()

    passed, failed, skipped, problems, browser_skips = read_odoo(args.odoo_log, args.odoo_rc)
    if not args.no_pytest:
        p_passed, p_failed, p_skipped, p_problems = read_pytest(args.pytest_xml, args.pytest_rc)
        passed, failed, skipped = passed + p_passed, failed + p_failed, skipped + p_skipped
        problems += p_problems

    for line in browser_skips:
        print(f"browser tour skipped (counted as failed): {line}")
    if problems:
        print("\nProblems:")
        for line in problems[:50]:
            print(f"  {line}")
        if len(problems) > 50:
            print(f"  ... and {len(problems) - 50} more (see {args.odoo_log})")
    reliability = read_reliability(args.reliability)
    if reliability:
        print("\nReliability:")
        for check, template in RELIABILITY_LINES:
            if check in reliability:
                keys = (
                    "requests",
                    "expected",
                    "found",
                    "injected",
                    "survived",
                    "tried",
                    "refused",
                    "run",
                    "passed",
                )
                figures = dict.fromkeys(keys, 0)
                figures.update(reliability[check])
                print(f"  {template.format(**figures)}")
    summary = f"{passed} passed, {failed} failed"
    if skipped:
        summary += f", {skipped} skipped"
    print(summary)
    return 1 if failed or problems else 0


if __name__ == "__main__":
    sys.exit(main())
