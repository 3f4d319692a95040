"""The benchmark, run inside one Odoo process on its own database (see scripts/bench.sh).

For each N: N finished sessions go through the automatic sweep exactly as the cron runs it
(batch after batch, a commit after each) -- end, invoice created and posted, card charged with
Stripe mocked at ``_stripe_make_request`` -- then Odoo's stock path invoices and posts N
confirmed one-line sale orders. Then the engine alone. Prints a table, writes JSON.

    python -m bench.run --conf .state/odoo.conf --db bookconnect_bench --odoo-src /opt/odoo/18.0
"""

import argparse
import itertools
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from unittest.mock import patch

REPO = Path(__file__).resolve().parent.parent
TARGETS = {"time_ratio": 1.0, "scaling_ratio": 1.3, "query_growth": 1.02}
# Odoo's payment post-processing costs several times an invoice: measured on a sample only.
POST_PROCESS_SAMPLE = 30
# Methods that charge invoiced sessions, should the charge not run inside the sweep itself
# (the sweep's ``_after_invoices_posted`` hook). The first one present is called on the
# sessions the sweep left invoiced, inside the measured time.


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conf", required=True, help="Odoo configuration file")
    parser.add_argument("--db", required=True, help="database with bookconnect_therapy")
    parser.add_argument("--odoo-src", required=True, help="Odoo 18.0 source tree")
    parser.add_argument("--sizes", default="100,1000,5000", help="session counts, comma separated")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "latest.json"))
    parser.add_argument("--logfile", default=None, help="Odoo's log (default: stderr)")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="then profile 1,000 more sessions and orders (fewer when N is smaller)",
    )
    return parser.parse_args(argv)


def boot_odoo(args):
    sys.path.insert(0, args.odoo_src)
    import odoo
    from odoo.service.server import load_server_wide_modules

    options = ["-c", args.conf, "-d", args.db, "--log-level=warn", "--no-http"]
    if args.logfile:
        options.append(f"--logfile={args.logfile}")
    odoo.tools.config.parse_config(options, setup_logging=True)
    load_server_wide_modules()
    return odoo, odoo.modules.registry.Registry(args.db)


# ----------------------------------------------------------------------------------------------
# Stripe, mocked where Odoo's own payment_stripe tests mock it
# ----------------------------------------------------------------------------------------------


class FakeStripe:
    """Answers ``PaymentProvider._stripe_make_request``: every off-session PaymentIntent
    succeeds, as Stripe answers a saved card that pays."""

    def __init__(self):
        self.calls = 0
        self._ids = itertools.count(1)

    def __call__(self, provider, endpoint, payload=None, method="POST", **kwargs):
        self.calls += 1
        payload = payload or {}
        number = next(self._ids)
        if endpoint == "customers":
            return {"id": f"cus_bench_{number}", "object": "customer"}
        if endpoint.startswith("payment_intents"):
            amount = payload.get("amount", 0)
            return {
                "id": f"pi_bench_{number:08d}",
                "object": "payment_intent",
                "status": "succeeded",
                "amount": amount,
                "amount_received": amount,
                "currency": payload.get("currency", "usd"),
                "customer": payload.get("customer"),
                "description": payload.get("description"),
                "payment_method": {
                    "id": payload.get("payment_method") or f"pm_bench_{number}",
                    "object": "payment_method",
                    "type": "card",
                    "card": {"brand": "visa", "last4": "4242"},
                },
                "charges": {"data": [{"amount": amount, "status": "succeeded"}]},
            }
        return {"id": f"obj_bench_{number}", "object": endpoint}


# ----------------------------------------------------------------------------------------------
# The two paths
# ----------------------------------------------------------------------------------------------


def sweep(env, sessions):
    """Run the product's jobs as ``ir.cron`` does (a progress record, the server action, a
    commit, again while it reports work remaining): the sweep ends the sessions and posts their
    invoices, then the payment jobs it queued send the charges (Stripe mocked). Measured:
    everything but reading the outcome.

    :return: dict of figures.
    """
    from bench import measure

    batches = 0
    with measure.RssSampler() as rss, measure.Meter(env.cr) as meter:
        batches += _run_cron(env, "bookconnect_therapy.ir_cron_session_sweep")
        batches += _run_payment_jobs(env)
    return {**_figures(meter), "batches": batches, "peak_rss": rss.peak}


def _run_payment_jobs(env):
    """Run the payment jobs that are waiting, each in a transaction of its own, as queue_job's
    job runner does."""
    from odoo.addons.queue_job.job import Job

    records = env["queue.job"].search(
        [("channel", "=like", "root.stripe%"), ("state", "=", "pending")], order="id"
    )
    for record in records:
        job = Job.load(env, record.uuid)
        job.set_started()
        job.store()
        job.perform()
        job.set_done()
        job.store()
        env.cr.commit()
    return len(records)


def _run_cron(env, xmlid):
    """Run one cron job to completion, batch after batch, committing as ``ir.cron`` does."""
    from odoo import api

    cron = env.ref(xmlid)
    cron_env = api.Environment(
        env.cr, cron.user_id.id, {"lastcall": cron.lastcall, "cron_id": cron.id}
    )
    cron = cron.with_env(cron_env)
    batches = 0
    while True:
        batch_cron, progress = cron._add_progress()
        env.cr.commit()
        batch_cron._callback(cron.cron_name, cron.ir_actions_server_id.id)
        env.cr.commit()
        batches += 1
        if not progress.remaining:
            return batches


def sweep_outcome(env, sessions, fake_stripe_calls):
    """What the sweep did to the sessions (read after the measure)."""
    env.invalidate_all()
    sessions = sessions.with_env(env)
    states = {}
    for session in sessions:
        states[session.state] = states.get(session.state, 0) + 1
    invoices = sessions.invoice_id
    transactions = env["payment.transaction"].search(
        [("bookconnect_session_id", "in", sessions.ids)]
    )
    tx_states = {}
    for tx in transactions:
        tx_states[tx.state] = tx_states.get(tx.state, 0) + 1
    return {
        "sessions_by_state": states,
        "invoices_posted": len(invoices.filtered(lambda m: m.state == "posted")),
        "invoiced_amount": round(sum(invoices.mapped("amount_total")), 2),
        "segments_per_session": round(len(sessions.segment_ids) / len(sessions), 2),
        "transactions_by_state": tx_states,
        "stripe_requests": fake_stripe_calls,
    }


def peer(env, orders):
    """Odoo's stock invoicing: ``sale.order._create_invoices()`` (one invoice per order) and
    ``action_post()`` on the result, in one batch, committed.

    :return: dict of figures.
    """
    from bench import measure

    orders = orders.with_env(env)
    with measure.RssSampler() as rss, measure.Meter(env.cr) as meter:
        invoices = orders._create_invoices(grouped=True)
        invoices.action_post()
        env.flush_all()
        env.cr.commit()
    env.invalidate_all()
    return {
        **_figures(meter),
        "peak_rss": rss.peak,
        "invoices_posted": len(invoices.filtered(lambda m: m.state == "posted")),
        "invoiced_amount": round(sum(invoices.mapped("amount_total")), 2),
    }


# ----------------------------------------------------------------------------------------------
# Figures
# ----------------------------------------------------------------------------------------------


def _figures(meter):
    return {
        "seconds": meter.seconds,
        "queries": meter.queries,
        "cpu_seconds": meter.cpu_seconds,
        "db_cpu_seconds": meter.db_cpu_seconds,
    }


def per_unit(figures, n):
    """Add the per-session (or per-invoice) figures."""
    figures["ms_per_unit"] = round(figures["seconds"] * 1000 / n, 3)
    figures["per_second"] = round(n / figures["seconds"], 1)
    figures["queries_per_unit"] = round(figures["queries"] / n, 2)
    cpu = figures["cpu_seconds"] + (figures["db_cpu_seconds"] or 0)
    figures["cpu_ms_per_unit"] = round(cpu * 1000 / n, 3)
    for key in ("seconds", "cpu_seconds", "db_cpu_seconds"):
        if figures[key] is not None:
            figures[key] = round(figures[key], 3)
    return figures


def machine(env):
    cpu = "unknown"
    with open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo", encoding="utf-8") as info:
        ram_kib = int(next(line for line in info if line.startswith("MemTotal")).split()[1])
    env.cr.execute("SHOW server_version")
    postgres = env.cr.fetchone()[0]
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "ram_gib": round(ram_kib / 2**20, 1),
        "python": platform.python_version(),
        "postgresql": postgres,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def payment_registration(env, sessions):
    """Odoo's post-processing of the charges (payment created, posted, reconciled with the
    invoice), on a sample, when the charge left it to Odoo's payment cron.

    :return: dict of figures, or None when there is nothing to post-process.
    """
    from bench import measure

    txs = env["payment.transaction"].search(
        [
            ("bookconnect_session_id", "in", sessions.ids),
            ("state", "=", "done"),
            ("is_post_processed", "=", False),
        ],
        limit=POST_PROCESS_SAMPLE,
        order="id",
    )
    if not txs:
        return None
    with measure.Meter(env.cr) as meter:
        txs._cron_post_process()
    env.invalidate_all()
    figures = per_unit(_figures(meter), len(txs))
    figures["sample"] = len(txs)
    figures["invoices_paid"] = len(
        txs.invoice_ids.filtered(lambda m: m.payment_state in ("paid", "in_payment"))
    )
    return figures


def summarize(runs, engine_results):
    small, large = runs[0], runs[-1]
    scaling = round(large["ours"]["ms_per_unit"] / small["ours"]["ms_per_unit"], 3)
    cpu_scaling = round(large["ours"]["cpu_ms_per_unit"] / small["ours"]["cpu_ms_per_unit"], 3)
    queries = [run["ours"]["queries_per_unit"] for run in runs]
    # Per-batch work is shared by fewer sessions when N is small: only growth is a defect.
    steps = [after / before for before, after in itertools.pairwise(queries)]
    growth = round(max(steps, default=1.0), 3)
    worst_ratio = max(run["time_ratio"] for run in runs)
    return {
        "scaling_ratio": scaling,
        "cpu_scaling_ratio": cpu_scaling,
        "scaling_between": [small["n"], large["n"]],
        "queries_per_session": {str(run["n"]): run["ours"]["queries_per_unit"] for run in runs},
        "query_growth": growth,
        "worst_time_ratio": worst_ratio,
        "targets": {
            "time_ratio_le_1": worst_ratio <= TARGETS["time_ratio"],
            "scaling_ratio_le_1_3": scaling <= TARGETS["scaling_ratio"],
            "queries_constant": growth <= TARGETS["query_growth"],
        },
        "engine": engine_results,
    }


def table(result):
    lines = []
    m = result["machine"]
    lines.append(
        f"BookConnect bench on {m['nproc']} x {m['cpu']}, {m['ram_gib']} GiB RAM, "
        f"PostgreSQL {m['postgresql']}, Python {m['python']}"
    )
    lines.append("")
    lines.append(
        "Sessions -> posted invoices (+ card charge), sweep  vs  sale orders -> posted invoices"
    )
    header = (
        f"{'N':>6} | {'ours/s':>7} {'ms each':>8} {'queries':>8} | "
        f"{'peer/s':>7} {'ms each':>8} {'queries':>8} | {'time x':>6} {'query x':>7} | "
        f"peak RSS ours / peer"
    )
    lines.append(header)
    lines.append("-" * len(header))
    for run in result["runs"]:
        ours, other = run["ours"], run["peer"]
        lines.append(
            f"{run['n']:>6} | {ours['per_second']:>7.1f} {ours['ms_per_unit']:>8.2f} "
            f"{ours['queries_per_unit']:>8.2f} | {other['per_second']:>7.1f} "
            f"{other['ms_per_unit']:>8.2f} {other['queries_per_unit']:>8.2f} | "
            f"{run['time_ratio']:>6.2f} {run['query_ratio']:>7.2f} | "
            f"{ours['peak_rss'] / 2**20:>5.0f} MB / {other['peak_rss'] / 2**20:.0f} MB"
        )
    s = result["summary"]
    lines.append(
        "CPU ms (Odoo + its PostgreSQL backend) per session / per invoice: "
        + ", ".join(
            f"N={run['n']}: {run['ours']['cpu_ms_per_unit']:.1f} / "
            f"{run['peer']['cpu_ms_per_unit']:.1f} (x {run['cpu_ratio']:.2f})"
            for run in result["runs"]
        )
    )
    lines.append("")
    lines.append(
        f"Scaling: time per session at N={s['scaling_between'][1]} / N={s['scaling_between'][0]}"
        f" = {s['scaling_ratio']:.2f} (CPU {s['cpu_scaling_ratio']:.2f}); queries per session "
        + ", ".join(f"{n}: {q}" for n, q in s["queries_per_session"].items())
    )
    lines.append(
        "Engine (meter + price one session): "
        + ", ".join(
            f"{e['segments']} segments {e['best_us']:.1f} us (median {e['median_us']:.1f})"
            for e in s["engine"]
        )
    )
    t = s["targets"]
    verdict = lambda ok: "met" if ok else "MISSED"  # noqa: E731
    lines.append(
        f"Targets: time ratio <= 1.0 {verdict(t['time_ratio_le_1'])} "
        f"(worst {s['worst_time_ratio']:.2f}); scaling <= 1.3 "
        f"{verdict(t['scaling_ratio_le_1_3'])}; queries constant in N "
        f"{verdict(t['queries_constant'])} (largest step up {s['query_growth']:.2f})"
    )
    registration = result["runs"][-1]["ours"].get("payment_registration")
    if registration:
        lines.append(
            f"Charges post-processed by Odoo's payment cron (sample of {registration['sample']}):"
            f" {registration['ms_per_unit']:.2f} ms and {registration['queries_per_unit']:.1f}"
            " queries per payment"
        )
    outcome = result["runs"][-1]["ours"]["outcome"]
    lines.append(
        f"Last run: sessions {outcome['sessions_by_state']}, "
        f"{outcome['invoices_posted']} invoices posted, "
        f"transactions {outcome['transactions_by_state'] or 'none'}, "
        f"{outcome['stripe_requests']} Stripe requests (mocked)"
    )
    load = m["load_average_at_start"][0], m["load_average_at_end"][0]
    lines.append(
        f"Total {result['total_seconds']:.0f} s (set-up included); load average "
        f"{load[0]:.1f} at the start, {load[1]:.1f} at the end"
    )
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Main
# ----------------------------------------------------------------------------------------------


def main(argv=None):
    args = parse_args(argv)
    started = time.perf_counter()
    sizes = [int(n) for n in args.sizes.split(",")]
    odoo, registry = boot_odoo(args)
    from odoo import SUPERUSER_ID, api

    from odoo.addons.bookconnect_therapy import core
    from odoo.addons.payment_stripe.models.payment_provider import PaymentProvider

    from bench import engine, fixtures, measure

    fake_stripe = FakeStripe()
    result = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "database": args.db,
        "odoo": odoo.release.version,
        "runs": [],
    }
    with (
        registry.cursor() as cr,
        patch.object(PaymentProvider, "_stripe_make_request", autospec=True) as stripe_mock,
    ):
        stripe_mock.side_effect = fake_stripe
        env = api.Environment(cr, SUPERUSER_ID, {})
        result["machine"] = machine(env)
        _progress("creating the practice (therapists, clients, cards, policy, Stripe test mode)")
        data = fixtures.practice(env)
        cr.commit()
        first_index = 0
        for n in sizes:
            _progress(f"N={n}: booking and metering {n} finished sessions (set-up)")
            sessions = fixtures.finished_sessions(env, data, n, first_index)
            fixtures.analyze(env)
            _progress(f"N={n}: the sweep ends, invoices and charges them (measured)")
            calls_before = fake_stripe.calls
            ours = per_unit(sweep(env, sessions), n)
            ours["outcome"] = sweep_outcome(env, sessions, fake_stripe.calls - calls_before)
            _check_ours(ours, n)
            if n == sizes[-1]:
                ours["payment_registration"] = payment_registration(env, sessions)
            _progress(
                f"N={n}: ours {ours['ms_per_unit']:.2f} ms and "
                f"{ours['queries_per_unit']:.1f} queries per session"
            )
            _progress(f"N={n}: {n} confirmed sale orders (set-up)")
            orders = fixtures.confirmed_orders(env, data, n, first_index)
            fixtures.analyze(env)
            _progress(f"N={n}: Odoo invoices and posts them (measured)")
            other = per_unit(peer(env, orders), n)
            _progress(
                f"N={n}: peer {other['ms_per_unit']:.2f} ms and "
                f"{other['queries_per_unit']:.1f} queries per invoice"
            )
            result["runs"].append(
                {
                    "n": n,
                    "ours": ours,
                    "peer": other,
                    "time_ratio": round(ours["ms_per_unit"] / other["ms_per_unit"], 3),
                    "cpu_ratio": round(ours["cpu_ms_per_unit"] / other["cpu_ms_per_unit"], 3),
                    "query_ratio": round(ours["queries_per_unit"] / other["queries_per_unit"], 3),
                }
            )
            first_index += n
        if args.profile:
            result["profile"] = profile(env, data, first_index, args.out, min(1000, max(sizes)))
    _progress("the engine alone (timeit)")
    result["summary"] = summarize(result["runs"], engine.run(core))
    result["peak_rss_lifetime"] = measure.peak_rss_lifetime()
    result["total_seconds"] = round(time.perf_counter() - started, 1)
    result["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, sort_keys=True, default=str) + "\n")
    print(table(result))
    print(f"\nJSON: {out}")
    return 0


def _check_ours(ours, n):
    """A fast run that did not do the work would be a lie: stop on a wrong outcome."""
    outcome = ours["outcome"]
    ended = sum(outcome["sessions_by_state"].get(s, 0) for s in ("invoiced", "paid"))
    if ended != n or outcome["invoices_posted"] != n:
        raise SystemExit(f"the sweep did not invoice every session: {outcome}")


def profile(env, data, first_index, out, n):
    """Profile ``n`` more sessions through the sweep and ``n`` more orders through the peer."""
    from bench import fixtures, measure

    reports = {}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    sessions = fixtures.finished_sessions(env, data, n, first_index)
    fixtures.analyze(env)
    _progress("profiling the sweep")
    with measure.Profile() as prof:
        sweep(env, sessions)
    reports["ours"] = prof.summary(n)
    Path(out).with_name("profile-ours.txt").write_text(prof.top_functions(60))
    orders = fixtures.confirmed_orders(env, data, n, first_index)
    fixtures.analyze(env)
    _progress("profiling the peer")
    with measure.Profile() as prof:
        peer(env, orders)
    reports["peer"] = prof.summary(n)
    Path(out).with_name("profile-peer.txt").write_text(prof.top_functions(60))
    return reports


_T0 = time.perf_counter()


def _progress(message):
    print(f"[bench {time.perf_counter() - _T0:6.1f}s] {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
