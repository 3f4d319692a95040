"""Measuring a piece of work inside the Odoo process: wall time, SQL queries, peak memory,
and (on demand) a profile with the call sites that issue the queries."""

import cProfile
import io
import os
import pstats
import resource
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import psutil

import odoo.sql_db

# Frames of the ORM and the database layer: a query's "call site" is the first frame above them.
_ODOO = Path(odoo.__file__).resolve().parent
_FRAMEWORK = tuple(
    str(p)
    for p in (
        _ODOO / "sql_db.py",
        _ODOO / "models.py",
        _ODOO / "fields.py",
        _ODOO / "api.py",
        _ODOO / "tools",
        _ODOO / "osv",
        _ODOO / "addons" / "base" / "models" / "ir_model.py",
        _ODOO / "addons" / "base" / "models" / "ir_rule.py",
        Path(__file__).resolve(),
    )
)


def queries():
    """Queries run so far by every cursor of this process (Odoo's own counter)."""
    return odoo.sql_db.sql_counter


class RssSampler:
    """Samples the resident memory of this process in a thread; ``peak`` is the largest seen.

    psutil reads /proc: the sampling costs microseconds every ``interval`` seconds.
    """

    def __init__(self, interval=0.05):
        self.interval = interval
        self.process = psutil.Process(os.getpid())
        self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self):
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)
        return False


def backend_cpu_seconds(pid):
    """CPU time (user + system) PostgreSQL's backend process ``pid`` has used, or None when
    its /proc entry cannot be read (a database on another host)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            # The command name (field 2) may hold spaces: count fields after its ")".
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Meter:
    """Wall time, SQL queries and CPU time of the work done while it is active
    (``with Meter(cr) as m``). CPU time is this process's plus its PostgreSQL backend's: on a
    machine shared with other jobs it moves less than wall time does.

    ``pause()`` excludes bookkeeping done inside the measured loop (a context manager too).
    """

    def __init__(self, cr=None):
        self.seconds = 0.0
        self.queries = 0
        self.cpu_seconds = 0.0
        self.db_cpu_seconds = 0.0
        self._backend = None
        if cr is not None:
            cr.execute("SELECT pg_backend_pid()")
            self._backend = cr.fetchone()[0]
            if backend_cpu_seconds(self._backend) is None:
                self._backend = self.db_cpu_seconds = None
        self._t0 = self._q0 = self._c0 = self._d0 = None

    def _start(self):
        self._q0 = queries()
        self._c0 = time.process_time()
        if self._backend:
            self._d0 = backend_cpu_seconds(self._backend)
        self._t0 = time.perf_counter()

    def _stop(self):
        self.seconds += time.perf_counter() - self._t0
        self.cpu_seconds += time.process_time() - self._c0
        if self._backend:
            self.db_cpu_seconds += backend_cpu_seconds(self._backend) - self._d0
        self.queries += queries() - self._q0

    def __enter__(self):
        self._start()
        return self

    def __exit__(self, *exc):
        self._stop()
        return False

    def pause(self):
        meter = self

        class _Paused:
            def __enter__(self):
                meter._stop()

            def __exit__(self, *exc):
                meter._start()
                return False

        return _Paused()


def peak_rss_lifetime():
    """Largest resident set of this process since it started, in bytes (Linux: KiB units)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _call_site(frame):
    """``file:line function`` of the first frame above the ORM and the database layer, and
    of the first frame in the addon (or None)."""
    site = ours = None
    while frame is not None:
        filename = frame.f_code.co_filename
        # "<decorator-gen-N>" frames are the ORM's generated wrappers.
        if site is None and not filename.startswith((*_FRAMEWORK, "<")):
            site = _describe(frame)
        if "bookconnect_therapy" in filename:
            ours = _describe(frame)
            break
        frame = frame.f_back
    return site, ours


def _describe(frame):
    filename = frame.f_code.co_filename
    for root in (str(_ODOO.parent / "addons") + "/", str(_ODOO.parent) + "/"):
        if filename.startswith(root):
            filename = filename[len(root) :]
            break
    if "bookconnect_therapy/" in filename:
        filename = filename[filename.index("bookconnect_therapy/") :]
    return f"{filename}:{frame.f_lineno} {frame.f_code.co_name}"


class Profile:
    """cProfile of the work plus the call sites of its SQL queries (through Odoo's per-thread
    ``query_hooks``). Costs time: never used for the measured figures."""

    def __init__(self):
        self.profiler = cProfile.Profile()
        self.sites = Counter()
        self.our_sites = Counter()

    def _hook(self, cr, query, params, start, delay):
        site, ours = _call_site(sys._getframe(1))
        self.sites[site] += 1
        if ours:
            self.our_sites[ours] += 1

    def __enter__(self):
        thread = threading.current_thread()
        thread.query_hooks = (*getattr(thread, "query_hooks", ()), self._hook)
        self.profiler.enable()
        return self

    def __exit__(self, *exc):
        self.profiler.disable()
        thread = threading.current_thread()
        thread.query_hooks = tuple(h for h in thread.query_hooks if h != self._hook)
        return False

    def top_functions(self, limit=30, sort="cumulative"):
        out = io.StringIO()
        stats = pstats.Stats(self.profiler, stream=out)
        stats.sort_stats(sort).print_stats(limit)
        return out.getvalue()

    def summary(self, per, limit=15):
        """The call sites issuing the most queries, per unit of work (session or invoice)."""
        return {
            "queries_by_call_site": [
                {"site": site, "per_unit": round(count / per, 2)}
                for site, count in self.sites.most_common(limit)
            ],
            "queries_by_addon_frame": [
                {"site": site, "per_unit": round(count / per, 2)}
                for site, count in self.our_sites.most_common(limit)
            ],
        }
