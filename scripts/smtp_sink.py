"""An SMTP server on 127.0.0.1 that accepts every message and keeps it, so that the email Odoo
sends can be read instead of going out. Python's standard library only.

``make run`` runs it for the demo, keeping each message in a folder (``.state/mail``):

    .venv/bin/python scripts/smtp_sink.py --port 8071 --folder .state/mail

- ``<time>-<subject>.eml``: the message as received, with ``Return-Path`` and one
  ``Delivered-To`` per recipient added on top, as a mail server delivering it would;
- ``<time>-<subject>.html``: sender, recipients, subject and the body, readable in a browser;
- ``<time>-<subject>.files/``: its attachments (invoice PDFs, ...);
- ``index.html``: every message kept, newest first.

The system tests (``tests/harness.py``) keep the messages in memory instead, with a subclass.
"""

import argparse
import contextlib
import email
import email.policy
import html
import os
import re
import signal
import socketserver
import sys
import threading
import time
import unicodedata
from email.parser import BytesHeaderParser
from pathlib import Path

HOST = "127.0.0.1"
# An address inside the angle brackets of "MAIL FROM:<a@b.c> SIZE=123" or "RCPT TO:<a@b.c>".
ENVELOPE_ADDRESS = re.compile(rb":\s*<([^>]*)>|:\s*(\S+)")


def parse(raw):
    """The ``email.message.EmailMessage`` of a message's bytes."""
    return email.message_from_bytes(raw, policy=email.policy.default)


def _envelope_address(line):
    match = ENVELOPE_ADDRESS.search(line)
    address = (match[1] if match[1] is not None else match[2]) if match else b""
    return address.decode(errors="replace")


class _SmtpHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP for Python's smtplib (what Odoo sends with): every sender, recipient
    and message is accepted."""

    # A client that stops talking does not hold a thread forever.
    timeout = 120

    def reply(self, text):
        self.wfile.write(text.encode() + b"\r\n")

    def handle(self):
        self.reply(f"220 {HOST} BookConnect mail sink")
        sender, recipients = None, []
        while line := self.rfile.readline():
            verb = line[:4].upper()
            if verb == b"EHLO":
                self.reply(f"250-{HOST}\r\n250-8BITMIME\r\n250 SMTPUTF8")
            elif verb == b"HELO":
                self.reply(f"250 {HOST}")
            elif verb == b"MAIL":
                sender, recipients = _envelope_address(line), []
                self.reply("250 OK")
            elif verb == b"RCPT":
                recipients.append(_envelope_address(line))
                self.reply("250 OK")
            elif verb == b"DATA":
                self.reply("354 end with <CRLF>.<CRLF>")
                lines = []
                while (data := self.rfile.readline()) not in (b".\r\n", b".\n", b""):
                    # The sender doubled every leading dot (RFC 5321, 4.5.2).
                    lines.append(data[1:] if data.startswith(b".") else data)
                self.server.sink.received(b"".join(lines), sender, recipients)
                sender, recipients = None, []
                self.reply("250 OK")
            elif verb == b"QUIT":
                self.reply("221 bye")
                return
            elif verb in (b"RSET", b"NOOP"):
                if verb == b"RSET":
                    sender, recipients = None, []
                self.reply("250 OK")
            else:
                self.reply("502 not implemented")


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def handle_error(self, request, client_address):
        # A client that hung up is its own business: one line, no traceback.
        print(f"mail sink: {client_address[0]}: {sys.exc_info()[1]!r}", file=sys.stderr)


class SmtpSink:
    """An SMTP server on 127.0.0.1 (``port`` 0: any free port, read ``port`` after ``start``)
    that hands every message it receives to ``received``."""

    def __init__(self, port=0):
        self.port = port
        self._server = None

    def received(self, raw, sender, recipients):
        """Keep one message: ``raw`` bytes, envelope ``sender`` and ``recipients``."""
        raise NotImplementedError

    def start(self):
        """Listen (in a thread); return the sink.

        :raise OSError: when the port is taken.
        """
        self._server = _Server((HOST, self.port), _SmtpHandler)
        self._server.sink = self
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def address(self):
        """``(host, port)`` the sink listens on, once started."""
        return self._server.server_address if self._server else None

    def stop(self):
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


def _slug(text, length=60):
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9]+", "-", ascii_text).strip("-")[:length].strip("-") or "no-subject"


def _safe_filename(name):
    name = re.sub(r"[^\w.\- ]+", "_", Path(name or "").name).strip(". ")
    return name[:120] or "attachment"


def _atomic_write(path, data):
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data if isinstance(data, bytes) else data.encode())
    os.replace(tmp, path)


PAGE_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }
table { border-collapse: collapse; }
th, td { text-align: left; padding: .3rem .8rem .3rem 0; vertical-align: top; }
table.list tr + tr td { border-top: 1px solid #ddd; }
iframe { width: 100%; height: 75vh; border: 1px solid #ccc; }
pre { white-space: pre-wrap; border: 1px solid #ccc; padding: 1rem; }
.muted { color: #777; }
"""


def _page(title, body):
    return (
        "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{PAGE_STYLE}</style></head>"
        f"<body>{body}</body></html>\n"
    )


class MailFolder(SmtpSink):
    """A sink that keeps each message as files in ``folder`` (see the module's docstring)."""

    def __init__(self, folder, port=0):
        super().__init__(port)
        self.folder = Path(folder)
        self._lock = threading.Lock()

    def start(self):
        self.folder.mkdir(parents=True, exist_ok=True)
        super().start()
        # Mail kept by an earlier run stays listed.
        with self._lock:
            self.write_index()
        return self

    def received(self, raw, sender, recipients):
        message = parse(raw)
        with self._lock:
            stem = self._new_stem(str(message["Subject"] or ""))
            envelope = f"Return-Path: <{sender or ''}>\r\n" + "".join(
                f"Delivered-To: {recipient}\r\n" for recipient in recipients
            )
            _atomic_write(self.folder / f"{stem}.eml", envelope.encode() + raw)
            files = self._save_attachments(stem, message)
            _atomic_write(
                self.folder / f"{stem}.html", self._message_page(stem, message, recipients, files)
            )
            self.write_index()

    def _new_stem(self, subject):
        stamp = time.strftime("%Y%m%d-%H%M%S")
        stem, number = f"{stamp}-{_slug(subject)}", 1
        while (self.folder / f"{stem}.eml").exists():
            number += 1
            stem = f"{stamp}-{_slug(subject)}-{number}"
        return stem

    def _save_attachments(self, stem, message):
        files = []
        for part in message.iter_attachments():
            content = part.get_payload(decode=True)
            if content is None:
                continue
            folder = self.folder / f"{stem}.files"
            folder.mkdir(exist_ok=True)
            name = _safe_filename(part.get_filename())
            target, number = folder / name, 1
            while target.exists():
                number += 1
                target = folder / f"{number}-{name}"
            _atomic_write(target, content)
            files.append(target)
        return files

    @staticmethod
    def _message_page(stem, message, recipients, files):
        rows = [
            ("Date", message["Date"]),
            ("From", message["From"]),
            ("To", message["To"]),
            ("Cc", message["Cc"]),
            ("Delivered to", ", ".join(recipients)),
            ("Subject", message["Subject"]),
        ]
        table = "".join(
            f"<tr><th>{name}</th><td>{html.escape(str(value))}</td></tr>"
            for name, value in rows
            if value
        )
        attachments = "".join(
            f"<li><a href='{html.escape(f'{stem}.files/{path.name}')}'>"
            f"{html.escape(path.name)}</a> <span class='muted'>"
            f"({max(path.stat().st_size // 1024, 1)} KB)</span></li>"
            for path in files
        )
        part = message.get_body(("html", "plain"))
        content = part.get_content() if part else ""
        if part is not None and part.get_content_subtype() == "html":
            # Sandboxed: the message's own markup cannot run scripts here; its links open
            # in a new tab.
            body = (
                "<iframe sandbox='allow-popups allow-popups-to-escape-sandbox' srcdoc=\""
                f'{html.escape("<base target=_blank>" + content)}"></iframe>'
            )
        else:
            body = f"<pre>{html.escape(content)}</pre>"
        return _page(
            str(message["Subject"] or "(no subject)"),
            f"<p><a href='index.html'>All mail</a> · <a href='{html.escape(stem)}.eml'>"
            f"the message as received (.eml)</a></p><table>{table}</table>"
            + (f"<p>Attachments:</p><ul>{attachments}</ul>" if attachments else "")
            + body,
        )

    def write_index(self):
        """Write ``index.html``: every message of the folder, newest first."""
        rows = []
        by_arrival = sorted(
            self.folder.glob("*.eml"), key=lambda path: (path.stat().st_mtime_ns, path.name)
        )
        for path in reversed(by_arrival):
            with path.open("rb") as handle:
                headers = BytesHeaderParser(policy=email.policy.default).parse(handle)
            recipients = ", ".join(headers.get_all("Delivered-To") or []) or headers["To"]
            cells = (
                headers["Date"],
                headers["From"],
                recipients,
            )
            rows.append(
                "<tr>"
                + "".join(f"<td>{html.escape(str(cell or ''))}</td>" for cell in cells)
                + f"<td><a href='{html.escape(path.stem)}.html'>"
                f"{html.escape(str(headers['Subject'] or '(no subject)'))}</a></td></tr>"
            )
        table = (
            "<table class='list'><tr><th>Date</th><th>From</th><th>To</th><th>Subject</th></tr>"
            + "".join(rows)
            + "</table>"
            if rows
            else "<p class='muted'>No mail yet.</p>"
        )
        _atomic_write(
            self.folder / "index.html",
            _page(
                "Mail sent by the demo",
                "<h1>Mail sent by the demo</h1><p class='muted'>Newest first; reload the page"
                f" to see new mail. Received on {HOST}:{self.port}.</p>{table}",
            ),
        )


def _exit_with_parent(parent_pid):
    """Exit when the process that started the sink is gone, even if it could not stop it."""
    while True:
        try:
            os.kill(parent_pid, 0)
        except ProcessLookupError:
            os._exit(0)
        time.sleep(1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True, help="port on 127.0.0.1")
    parser.add_argument("--folder", required=True, help="where to keep the mail")
    parser.add_argument("--parent-pid", type=int, help="exit when this process is gone")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_args: sys.exit(0))
    sink = MailFolder(args.folder, args.port)
    try:
        sink.start()
    except OSError as exc:
        sys.exit(f"mail sink: cannot listen on {HOST}:{args.port}: {exc.strerror}")
    if args.parent_pid:
        threading.Thread(target=_exit_with_parent, args=(args.parent_pid,), daemon=True).start()
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        threading.Event().wait()
    sink.stop()


if __name__ == "__main__":
    main()
