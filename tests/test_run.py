"""`make run` (scripts/run.sh) as a newcomer runs it: the demo is installed and served on its
address, its links use that address, the email it sends is kept by the mail sink run.sh starts
(in files a person can open), and stopping the run stops the sink, whose mail survives a
restart."""

import email
import email.policy
import html
import os
import signal
import socket
import subprocess
import time

import pytest
import requests
from harness import CONF, LOGS, REPO, Rpc, drop_db, free_port, levels, psql, template

RUN = REPO / "scripts" / "run.sh"


class DemoRun:
    """``scripts/run.sh`` in its own process group, on free ports, with its own database,
    mail folder and log."""

    def __init__(self, db, mail_dir):
        self.db = db
        self.mail_dir = mail_dir
        self.log = LOGS / "run.log"
        self.proc = None
        self.ports()

    def ports(self):
        """Take new ports (as a run with another BOOKCONNECT_HTTP_PORT would)."""
        self.port, self.smtp_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self, timeout=900):
        LOGS.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "BOOKCONNECT_DEMO_DB": self.db,
            "BOOKCONNECT_HTTP_PORT": str(self.port),
            "BOOKCONNECT_SMTP_PORT": str(self.smtp_port),
            "BOOKCONNECT_MAIL_DIR": str(self.mail_dir),
            # The test script's demo template: no second template to build.
            "BOOKCONNECT_DEMO_TEMPLATE": template("demo"),
        }
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                ["bash", str(RUN)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"run.sh exited with {self.proc.returncode}; see {self.log}")
            try:
                if requests.get(f"{self.url}/web/login", timeout=5).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(1)
        self.kill()
        raise RuntimeError(f"the demo did not answer on {self.url}; see {self.log}")

    def processes_left(self):
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def kill(self):
        if self.proc and self.processes_left():
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self, how):
        """``ctrl-c``: SIGINT to the whole process group, as the terminal sends it;
        ``terminate``: SIGTERM to run.sh alone, as a process manager would."""
        if how == "ctrl-c":
            os.killpg(self.proc.pid, signal.SIGINT)
        else:
            self.proc.terminate()
        returncode = self.proc.wait(timeout=120)
        deadline = time.monotonic() + 30
        while self.processes_left() and time.monotonic() < deadline:
            time.sleep(0.2)
        return returncode

    def admin(self):
        return Rpc(self.url, self.db, "admin", "admin")

    def wait_for_mail(self, subject, timeout=180):
        """The messages kept whose subject contains ``subject``, waiting for one to arrive
        (Odoo sends its queue of email in the background)."""
        deadline = time.monotonic() + timeout
        while True:
            messages = [
                email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
                for path in sorted(self.mail_dir.glob("*.eml"))
            ]
            found = [message for message in messages if subject in str(message["Subject"])]
            if found or time.monotonic() > deadline:
                return found
            time.sleep(1)


def html_body(message):
    return html.unescape(message.get_body(("html", "plain")).get_content())


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    prefix = os.environ.get("BOOKCONNECT_TEST_DB", "bookconnect_test")
    run = DemoRun(f"{prefix}_run", tmp_path_factory.mktemp("mail"))
    drop_db(run.db)
    run.log.unlink(missing_ok=True)
    try:
        yield run.start()
    finally:
        run.kill()
        drop_db(run.db)


def test_the_demo_installs_cleanly(demo):
    install_log = LOGS / f"{demo.db}-install.log"
    lines = install_log.read_text(errors="replace").splitlines()
    assert not levels(lines, "ERROR", "CRITICAL"), levels(lines, "ERROR", "CRITICAL")


def test_the_demo_runs_the_payment_job_runner(demo):
    """make run loads queue_job server-wide: its job runner sends the payments of the demo's
    database, in the channels of the configuration (a root.stripe channel of one)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        log = demo.log.read_text(errors="replace")
        if f"queue job runner ready for db {demo.db}" in log:
            break
        time.sleep(1)
    else:
        pytest.fail(f"no job runner started for {demo.db}; see {demo.log}")
    conf = CONF.read_text()
    assert "channels = root:2,root.stripe:1" in conf


def test_links_use_the_address_the_demo_is_served_on(demo):
    params = dict(
        line.split("|")
        for line in psql(
            demo.db,
            "SELECT key, value FROM ir_config_parameter"
            " WHERE key IN ('web.base.url', 'web.base.url.freeze', 'report.url')",
        ).splitlines()
    )
    assert params == {
        "web.base.url": demo.url,
        "web.base.url.freeze": "True",
        "report.url": demo.url,
    }
    admin = demo.admin()
    sessions = admin(
        "bookconnect.therapy.session",
        "search_read",
        [],
        fields=["videocall_url", "call_events_url"],
    )
    assert len(sessions) >= 6
    for session in sessions:
        assert session["videocall_url"].startswith(f"{demo.url}/calendar/join_videocall/")
        assert session["call_events_url"].startswith(f"{demo.url}/bookconnect/calls/")
    # The client, signed in, follows their session's link and is let in: no second sign-in.
    [client] = admin("res.users", "search_read", [("login", "=", "client")], fields=["partner_id"])
    [link] = admin(
        "bookconnect.therapy.session",
        "search_read",
        [("partner_id", "=", client["partner_id"][0]), ("state", "=", "scheduled")],
        fields=["videocall_url"],
        limit=1,
    )
    web = requests.Session()
    web.post(
        f"{demo.url}/web/session/authenticate",
        json={"params": {"db": demo.db, "login": "client", "password": "client"}},
        timeout=60,
    ).raise_for_status()
    response = web.get(link["videocall_url"], allow_redirects=False, timeout=60)
    assert "/discuss/channel/" in response.headers.get("Location", ""), response.headers


def test_the_email_the_demo_sends_is_kept_by_the_sink(demo):
    server = psql(
        demo.db, "SELECT smtp_host || ':' || smtp_port FROM ir_mail_server WHERE active"
    ).splitlines()
    assert server == [f"127.0.0.1:{demo.smtp_port}"]
    # Odoo's queue of email runs every minute in the demo (hourly by default).
    queue = psql(
        demo.db,
        "SELECT c.interval_number || ' ' || c.interval_type || ' ' || c.active FROM ir_cron c"
        " JOIN ir_model_data d ON d.res_id = c.id AND d.model = 'ir.cron'"
        " WHERE d.module = 'mail' AND d.name = 'ir_cron_mail_scheduler_action'",
    )
    assert queue == "1 minutes true"

    # The booking confirmations queued when the demo was installed: sent by the queue's cron.
    [confirmation, *_others] = demo.wait_for_mail("is booked")
    assert f"{demo.url}/my/sessions/" in html_body(confirmation)

    # A message the therapist's practice posts to a client now.
    admin = demo.admin()
    [session_id] = admin(
        "bookconnect.therapy.session", "search", [("state", "=", "scheduled")], limit=1
    )
    client = admin.read("bookconnect.therapy.session", session_id, ["partner_id"])["partner_id"]
    admin(
        "bookconnect.therapy.session",
        "message_post",
        [session_id],
        subject="A note from the practice",
        body="See you soon: the link is in your reminder.",
        partner_ids=[client[0]],
        message_type="comment",
        subtype_xmlid="mail.mt_comment",
    )
    [posted] = demo.wait_for_mail("A note from the practice")
    assert "See you soon" in html_body(posted)
    index = (demo.mail_dir / "index.html").read_text()
    assert html.escape(str(posted["Subject"]), quote=False) in index


def test_stopping_the_run_stops_the_sink_and_a_restart_keeps_the_mail(demo):
    kept = {path.name for path in demo.mail_dir.glob("*.eml")}
    assert kept
    old_url = demo.url
    server_log = demo.log.read_text(errors="replace").splitlines()
    assert not levels(server_log, "ERROR", "CRITICAL")
    # (Ctrl+C reaches the programs Odoo runs too: a PDF being rendered fails, and says so.)
    assert demo.stop("ctrl-c") != 0
    assert not demo.processes_left(), "Odoo or the mail sink outlived the run"
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", demo.smtp_port), timeout=5).close()
    assert "Forced shutdown" not in demo.log.read_text(), "Odoo did not stop cleanly"

    # Started again on other ports: nothing to install, the links and the mail server follow.
    demo.ports()
    demo.start(timeout=300)
    assert set(kept) <= {path.name for path in demo.mail_dir.glob("*.eml")}
    index = (demo.mail_dir / "index.html").read_text()
    assert all(name.removesuffix(".eml") in index for name in kept)
    admin = demo.admin()
    links = admin("bookconnect.therapy.session", "search_read", [], fields=["videocall_url"])
    assert all(link["videocall_url"].startswith(f"{demo.url}/") for link in links)
    assert old_url != demo.url
    server = psql(demo.db, "SELECT smtp_port FROM ir_mail_server WHERE active")
    assert server == str(demo.smtp_port)

    demo.stop("terminate")
    assert not demo.processes_left(), "Odoo or the mail sink outlived the run"
