"""The mail sink `make run` starts (scripts/smtp_sink.py): it accepts every message on
127.0.0.1 and keeps it as files a person can open, across restarts."""

import email
import email.policy
import smtplib
import subprocess
import sys
import time
from email.message import EmailMessage

import pytest
from harness import REPO, free_port
from smtp_sink import MailFolder

SINK = REPO / "scripts" / "smtp_sink.py"
PDF = b"%PDF-1.4 a receipt\n"


def receipt(subject="Réservation confirmée: your receipt"):
    message = EmailMessage()
    message["From"] = "Practice <info@example.com>"
    message["To"] = "Jamie Clarke <jamie@example.com>"
    message["Subject"] = subject
    message.set_content("Thank you.\n.A line that starts with a dot\n")
    message.add_alternative(
        "<p>Thank you, <b>Jamie</b>.</p><script>alert('x')</script>\n.<p>Dot line</p>",
        subtype="html",
    )
    message.add_attachment(PDF, maintype="application", subtype="pdf", filename="INV/1.pdf")
    return message


def send(sink, message, sender="info@example.com", recipients=("jamie@example.com",)):
    with smtplib.SMTP("127.0.0.1", sink.port, timeout=30) as client:
        client.send_message(message, from_addr=sender, to_addrs=list(recipients))


@pytest.fixture
def sink(tmp_path):
    sink = MailFolder(tmp_path / "mail").start()
    yield sink
    sink.stop()


def test_a_message_is_kept_as_files_a_person_can_open(sink):
    send(sink, receipt(), recipients=["jamie@example.com", "hidden-copy@example.com"])
    folder = sink.folder
    [eml] = list(folder.glob("*.eml"))
    assert eml.name.endswith("-Reservation-confirmee-your-receipt.eml")
    raw = eml.read_bytes()
    assert raw.startswith(
        b"Return-Path: <info@example.com>\r\nDelivered-To: jamie@example.com\r\n"
        b"Delivered-To: hidden-copy@example.com\r\n"
    )
    kept = email.message_from_bytes(raw, policy=email.policy.default)
    assert kept["Subject"] == "Réservation confirmée: your receipt"
    # Dot-stuffed lines come back as they were sent.
    assert ".A line that starts with a dot" in kept.get_body(("plain",)).get_content()
    assert "\n.<p>Dot line</p>" in kept.get_body(("html",)).get_content()

    page = eml.with_suffix(".html").read_text()
    assert "Réservation confirmée: your receipt" in page
    assert "Jamie Clarke &lt;jamie@example.com&gt;" in page
    assert "jamie@example.com, hidden-copy@example.com" in page  # Bcc included
    # The body, escaped into a sandboxed frame: its script cannot run.
    assert "<iframe sandbox='allow-popups allow-popups-to-escape-sandbox' srcdoc=" in page
    assert "&lt;b&gt;Jamie&lt;/b&gt;" in page
    assert "<script>" not in page
    attachment = folder / f"{eml.stem}.files" / "1.pdf"
    assert attachment.read_bytes() == PDF
    assert f"{eml.stem}.files/1.pdf" in page

    index = (folder / "index.html").read_text()
    assert f"<a href='{eml.stem}.html'>Réservation confirmée: your receipt</a>" in index
    assert "info@example.com" in index
    assert "jamie@example.com, hidden-copy@example.com" in index


def test_it_listens_on_127_0_0_1_only(sink):
    assert sink.address == ("127.0.0.1", sink.port)


def test_nothing_is_refused(sink):
    """Bounces (no sender), local names, international addresses: all kept."""
    message = receipt("Odd addresses")
    with smtplib.SMTP("127.0.0.1", sink.port, timeout=30) as client:
        refused = client.sendmail(
            "",
            ["postmaster", "jöe@exämple.com", "a@b"],
            message.as_bytes(),
            mail_options=["SMTPUTF8"],
        )
    assert refused == {}
    [eml] = list(sink.folder.glob("*Odd-addresses.eml"))
    assert "Delivered-To: jöe@exämple.com" in eml.read_bytes().decode()
    assert "postmaster, jöe@exämple.com, a@b" in (sink.folder / "index.html").read_text()


def test_mail_kept_before_a_restart_stays_listed(tmp_path):
    folder = tmp_path / "mail"
    first = MailFolder(folder).start()
    port = first.port
    send(first, receipt("Before the restart"))
    first.stop()

    again = MailFolder(folder, port).start()
    try:
        index = (folder / "index.html").read_text()
        assert "Before the restart" in index
        send(again, receipt("After the restart"))
        send(again, receipt("After the restart"))  # same second, same subject: both kept
    finally:
        again.stop()
    index = (folder / "index.html").read_text()
    assert index.index("After the restart") < index.index("Before the restart")  # newest first
    assert len(list(folder.glob("*.eml"))) == 3


def test_the_command_says_when_its_port_is_taken(tmp_path, sink):
    result = subprocess.run(
        [sys.executable, str(SINK), "--port", str(sink.port), "--folder", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert f"cannot listen on 127.0.0.1:{sink.port}" in result.stderr


def test_the_command_stops_with_the_process_that_started_it(tmp_path):
    """Even when `make run` is killed outright and cannot stop it."""
    parent = subprocess.Popen(["sleep", "2"])
    port = free_port()
    command = [sys.executable, str(SINK), "--port", str(port), "--folder", str(tmp_path)]
    sink = subprocess.Popen([*command, "--parent-pid", str(parent.pid)])
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "index.html").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sink.poll() is None, "the sink runs while its parent does"
        parent.wait()
        assert sink.wait(timeout=30) == 0
    finally:
        parent.kill()
        sink.kill()
