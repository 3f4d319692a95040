"""Helpers for the system tests: databases cloned from the set-up's templates, Odoo server
processes on 127.0.0.1, and reading their logs. Everything goes through real processes."""

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
STATE = Path(os.environ.get("BOOKCONNECT_STATE", REPO / ".state"))
VENV_PY = Path(os.environ.get("BOOKCONNECT_VENV", REPO / ".venv")) / "bin" / "python"
CONF = STATE / "odoo.conf"
LOGS = STATE / "logs"
FILESTORE = Path(os.environ.get("BOOKCONNECT_DATA_DIR", STATE / "data")) / "filestore"
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ \d+ (?P<level>[A-Z]+) ")


def odoo_src():
    path = STATE / "odoo-src"
    if not path.exists():
        raise RuntimeError("Odoo is not set up: run `make setup` (or `make test`) first")
    return Path(path.read_text().strip())


def template(kind):
    """Name of the template database the test script built (``demo`` or ``nodemo``)."""
    name = os.environ.get(f"BOOKCONNECT_TEMPLATE_{kind.upper()}")
    if not name:
        raise RuntimeError(
            f"BOOKCONNECT_TEMPLATE_{kind.upper()} is not set:"
            " run the system tests through `make test`"
        )
    return name


def psql(db, sql):
    out = subprocess.run(
        ["psql", "-d", db, "-Atc", sql], check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


def drop_db(name):
    subprocess.run(["dropdb", "--if-exists", "--force", name], check=True, capture_output=True)
    shutil.rmtree(FILESTORE / name, ignore_errors=True)


def clone_db(source, name):
    drop_db(name)
    subprocess.run(["createdb", "-T", source, name], check=True, capture_output=True)
    if (FILESTORE / source).exists():
        shutil.copytree(FILESTORE / source, FILESTORE / name)
    return name


def odoo_cmd(*args):
    return [str(VENV_PY), str(odoo_src() / "odoo-bin"), "-c", str(CONF), *args]


def run_odoo(db, *args, log_name, timeout=900):
    """Run odoo-bin to completion on ``db``; return (returncode, log lines)."""
    LOGS.mkdir(parents=True, exist_ok=True)
    logfile = LOGS / f"{log_name}.log"
    logfile.unlink(missing_ok=True)
    proc = subprocess.run(
        odoo_cmd("-d", db, "--logfile", str(logfile), "--no-http", *args),
        check=False,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    lines = logfile.read_text(errors="replace").splitlines() if logfile.exists() else []
    return proc.returncode, lines


def levels(lines, *wanted):
    return [line for line in lines if (m := LOG_LINE.match(line)) and m["level"] in wanted]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class OdooServer:
    """An Odoo server process on 127.0.0.1 serving one database."""

    def __init__(self, db, *extra, log_name, workers=0, env=None):
        self.db = db
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.logfile = LOGS / f"{log_name}.log"
        self.extra = list(extra)
        self.workers = workers
        self.env = env or {}
        self.proc = None

    def start(self, timeout=120):
        LOGS.mkdir(parents=True, exist_ok=True)
        args = [
            "-d",
            self.db,
            "--db-filter",
            f"^{re.escape(self.db)}$",
            "--http-interface",
            "127.0.0.1",
            "--http-port",
            str(self.port),
            "--gevent-port",
            str(free_port()),
            "--logfile",
            str(self.logfile),
            "--log-handler",
            "werkzeug:WARNING",
            *self.extra,
        ]
        if self.workers:
            args += [f"--workers={self.workers}", "--max-cron-threads=1", "--limit-time-real=600"]
        else:
            args += ["--max-cron-threads=0"]
        self.proc = subprocess.Popen(
            odoo_cmd(*args),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, **self.env},
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Odoo exited with {self.proc.returncode}; see {self.logfile}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url}/web/login", timeout=5).status_code == 200:
                    return self
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(
            f"Odoo did not answer on {self.url} within {timeout}s; see {self.logfile}"
        )

    def kill(self):
        """Kill the whole process group at once, as a crash would."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_lines(self):
        return (
            self.logfile.read_text(errors="replace").splitlines() if self.logfile.exists() else []
        )

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
