"""Helpers for the system tests: databases cloned from the set-up's templates, Odoo server
processes on 127.0.0.1, talking to them (JSON-RPC, logged-in web sessions), an SMTP sink for
their email, and reading their logs. Everything goes through real processes."""

import configparser
import contextlib
import importlib.util
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parent.parent
# The SMTP sink is shared with `make run` (scripts/smtp_sink.py).
sys.path.insert(0, str(REPO / "scripts"))
import smtp_sink  # noqa: E402

STATE = Path(os.environ.get("BOOKCONNECT_STATE", REPO / ".state"))
VENV_PY = Path(os.environ.get("BOOKCONNECT_VENV", REPO / ".venv")) / "bin" / "python"
CONF = STATE / "odoo.conf"
# Odoo modules that exist for the system tests only (never part of the product).
TEST_ADDONS = Path(__file__).resolve().parent / "odoo_addons"
LOGS = STATE / "logs"
FILESTORE = Path(os.environ.get("BOOKCONNECT_DATA_DIR", STATE / "data")) / "filestore"
# When these system tests started: logs written since then are theirs.
STARTED = time.time()
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (?P<pid>\d+) (?P<level>[A-Z]+) ")
WORKER_ALIVE = re.compile(r"Worker (?P<kind>Worker\w+) \((?P<pid>\d+)\) alive")


def record_reliability(check, **figures):
    """Append one line of figures (``concurrency``, ``faults``, ``hostile``, ``access``) to the
    reliability summary ``make test`` prints after the tests.

    :raise RuntimeError: when ``BOOKCONNECT_RELIABILITY_FILE`` is not set. These tests exist
        to produce the summary: run outside ``make test``, their figures would be lost.
    """
    path = os.environ.get("BOOKCONNECT_RELIABILITY_FILE")
    if not path:
        raise RuntimeError(
            "BOOKCONNECT_RELIABILITY_FILE is not set: run the system tests through `make test`"
            " (scripts/test.sh), which prints the reliability summary"
        )
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"check": check, **figures}) + "\n")


def billing_engine():
    """The addon's billing engine (``bookconnect_therapy/core``: plain Python, no Odoo),
    imported on its own as the package ``bookconnect_core``, to compute what Odoo should
    have measured and billed."""
    name = "bookconnect_core"
    if name not in sys.modules:
        folder = REPO / "bookconnect_therapy" / "core"
        spec = importlib.util.spec_from_file_location(
            name, folder / "__init__.py", submodule_search_locations=[str(folder)]
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


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


def addons_path(*extra):
    """The set-up's addons path, followed by ``extra`` folders."""
    config = configparser.ConfigParser()
    config.read(CONF)
    paths = [p.strip() for p in config.get("options", "addons_path").split(",") if p.strip()]
    return ",".join([*paths, *map(str, extra)])


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
    """An Odoo server process on 127.0.0.1 serving one database.

    :param extra: more odoo-bin arguments (``-i module`` installs before serving).
    :param addons: folders added to the set-up's addons path (e.g. ``TEST_ADDONS``).
    :param load: server-wide modules loaded besides ``base`` and ``web``.
    :param env: environment variables of the server process.
    """

    def __init__(self, db, *extra, log_name, workers=0, env=None, addons=(), load=()):
        self.db = db
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.logfile = LOGS / f"{log_name}.log"
        # A new server object starts a new log; a restart of the same one appends to it.
        self.logfile.unlink(missing_ok=True)
        self.extra = list(extra)
        if addons:
            self.extra += ["--addons-path", addons_path(*addons)]
        if load:
            self.extra += ["--load", ",".join(["base", "web", *load])]
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

    def worker_pids(self):
        """Process ids of the server's workers by kind (``WorkerHTTP``, ``WorkerCron``), as
        they announced themselves in the log (multi-process mode)."""
        pids = {}
        for line in self.log_lines():
            if match := WORKER_ALIVE.search(line):
                pids.setdefault(match["kind"], set()).add(int(match["pid"]))
        return pids

    def rpc(self, login, password):
        """JSON-RPC as ``login`` (see ``Rpc``)."""
        return Rpc(self.url, self.db, login, password)

    def web(self, login=None, password=None):
        """A browser-like HTTP session, logged in as ``login`` when given (see ``WebSession``)."""
        return WebSession(self.url, self.db, login, password)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class RpcError(Exception):
    """An error Odoo answered to a JSON-RPC call; ``name`` is the Python exception's class."""

    def __init__(self, error):
        data = error.get("data") or {}
        self.name = data.get("name", "")
        self.message = data.get("message") or error.get("message", "")
        super().__init__(f"{self.name}: {self.message}")


_rpc_ids = itertools.count(1)


def _json_rpc(http, url, params, timeout=120):
    response = http.post(
        url,
        json={"jsonrpc": "2.0", "method": "call", "params": params, "id": next(_rpc_ids)},
        timeout=timeout,
    )
    response.raise_for_status()
    body = response.json()
    if "error" in body:
        raise RpcError(body["error"])
    return body["result"]


class Rpc:
    """Odoo's external API (``/jsonrpc``) as one user of one database::

    admin = server.rpc("admin", "admin")
    ids = admin("res.partner", "search", [("email", "=", "a@b.c")], limit=1)
    """

    def __init__(self, url, db, login, password):
        self.url = url
        self.db = db
        self.login = login
        self.password = password
        self.http = requests.Session()
        self.uid = self._call("common", "authenticate", db, login, password, {})
        if not self.uid:
            raise RuntimeError(f"cannot log in to {db} as {login}")

    def _call(self, service, method, *args):
        return _json_rpc(
            self.http,
            f"{self.url}/jsonrpc",
            {"service": service, "method": method, "args": list(args)},
        )

    def __call__(self, model, method, *args, **kwargs):
        """``execute_kw``: ``method`` of ``model`` with positional ``args`` and ``kwargs``."""
        return self._call(
            "object", "execute_kw", self.db, self.uid, self.password, model, method, args, kwargs
        )

    def read(self, model, ids, fields):
        """``read`` that returns one dict for one id, a list for a list."""
        records = self(model, "read", [ids] if isinstance(ids, int) else ids, fields)
        return records[0] if isinstance(ids, int) else records

    def ref(self, xmlid):
        """Database id of an external id such as ``"base.main_company"``."""
        module, name = xmlid.split(".")
        [data] = self(
            "ir.model.data",
            "search_read",
            [("module", "=", module), ("name", "=", name)],
            fields=["res_id"],
        )
        return data["res_id"]

    def run_cron(self, xmlid):
        """Run a scheduled action now, as Settings > Technical > Scheduled Actions > Run
        Manually does (the test servers run no cron threads)."""
        return self("ir.cron", "method_direct_trigger", [self.ref(xmlid)])


class WebSession:
    """A browser-like session (cookies) on the server, logged in when a login is given: GET
    pages and call ``type="json"`` routes as that user, or as a visitor."""

    def __init__(self, url, db, login=None, password=None):
        self.url = url
        self.http = requests.Session()
        if login:
            self.json("/web/session/authenticate", db=db, login=login, password=password)

    def json(self, route, **params):
        return _json_rpc(self.http, f"{self.url}{route}", params)

    def get(self, path, **kwargs):
        kwargs.setdefault("timeout", 120)
        return self.http.get(f"{self.url}{path}", **kwargs)

    def post(self, path, **kwargs):
        kwargs.setdefault("timeout", 120)
        return self.http.post(f"{self.url}{path}", **kwargs)


class SmtpSink(smtp_sink.SmtpSink):
    """An SMTP server on 127.0.0.1 that keeps what it receives in memory: once started, give
    a test Odoo server ``--smtp 127.0.0.1 --smtp-port <port>`` and read the emails it really
    sent (the demo's sink, ``scripts/smtp_sink.py``, keeps them as files)."""

    def __init__(self):
        super().__init__()
        self.messages = []
        self._lock = threading.Lock()

    def received(self, raw, sender, recipients):
        with self._lock:
            self.messages.append(smtp_sink.parse(raw))

    def find(self, to=None, subject=None):
        """Messages whose To contains ``to`` and Subject contains ``subject``."""
        with self._lock:
            return [
                m
                for m in self.messages
                if (to is None or to in str(m["To"]))
                and (subject is None or subject in str(m["Subject"]))
            ]

    @staticmethod
    def html(message):
        part = message.get_body(("html", "plain"))
        return part.get_content() if part else ""
