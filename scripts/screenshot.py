"""Screenshots of the running demo as a given user, in Debian's headless Chromium.

    .venv/bin/python scripts/screenshot.py LOGIN PASSWORD URL OUT.png [--width 1280] [--height 900]
        [--wait 2] [--click CSS] [--mobile]

Signs in over HTTP (``/web/session/authenticate``), hands the session cookie to Chromium through
the DevTools protocol (``websocket-client``, already a test requirement), opens ``URL``, waits
until the page is idle (and ``--wait`` seconds more for the web client to draw), optionally
clicks a CSS selector, and writes a PNG of the full page. Used to make the README's pictures.
"""

import argparse
import base64
import contextlib
import json
import shutil
import socket
import subprocess
import tempfile
import time
from urllib.parse import urlsplit

import requests
import websocket


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sign_in(base, db, login, password):
    response = requests.post(
        f"{base}/web/session/authenticate",
        json={"jsonrpc": "2.0", "params": {"db": db, "login": login, "password": password}},
        timeout=30,
    )
    response.raise_for_status()
    if response.json().get("error"):
        raise SystemExit(f"cannot sign in as {login}: {response.json()['error']['message']}")
    return response.cookies["session_id"]


class DevTools:
    """The few DevTools calls a screenshot needs."""

    def __init__(self, ws_url):
        self.ws = websocket.create_connection(ws_url, timeout=60)
        self.next_id = 0

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})

    def wait_event(self, name, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = json.loads(self.ws.recv())
            if message.get("method") == name:
                return message
        raise TimeoutError(name)


@contextlib.contextmanager
def chromium(width, height):
    port = free_port()
    profile = tempfile.mkdtemp(prefix="bookconnect-shot-")
    proc = subprocess.Popen(
        [
            shutil.which("chromium") or "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            f"--remote-debugging-port={port}",
            f"--window-size={width},{height}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                targets = requests.get(f"http://127.0.0.1:{port}/json", timeout=2).json()
                page = next(t for t in targets if t["type"] == "page")
                break
            except (requests.RequestException, StopIteration):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        yield DevTools(page["webSocketDebuggerUrl"])
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(profile, ignore_errors=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("login")
    parser.add_argument("password")
    parser.add_argument("url")
    parser.add_argument("out")
    parser.add_argument("--db", default=None, help="database (default: the server's only one)")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=900)
    parser.add_argument("--wait", type=float, default=2.0)
    parser.add_argument("--click", help="CSS selector to click before the screenshot")
    parser.add_argument("--mobile", action="store_true", help="a phone's width (390 px)")
    args = parser.parse_args()
    if args.mobile:
        args.width, args.height = 390, 844
    parts = urlsplit(args.url)
    base = f"{parts.scheme}://{parts.netloc}"
    db = args.db
    if not db:
        db = requests.post(
            f"{base}/web/database/list", json={"jsonrpc": "2.0", "params": {}}, timeout=30
        ).json()["result"][0]
    session_id = sign_in(base, db, args.login, args.password)
    with chromium(args.width, args.height) as tab:
        tab.call("Network.enable")
        tab.call("Page.enable")
        tab.call(
            "Network.setCookie",
            name="session_id",
            value=session_id,
            domain=parts.hostname,
            path="/",
        )
        tab.call(
            "Emulation.setDeviceMetricsOverride",
            width=args.width,
            height=args.height,
            deviceScaleFactor=1,
            mobile=args.mobile,
        )
        tab.call("Page.navigate", url=args.url)
        tab.wait_event("Page.loadEventFired", timeout=60)
        time.sleep(args.wait)
        if args.click:
            tab.call(
                "Runtime.evaluate",
                expression=f"document.querySelector({json.dumps(args.click)}).click()",
            )
            time.sleep(args.wait)
        metrics = tab.call("Page.getLayoutMetrics")
        height = max(int(metrics["cssContentSize"]["height"]), args.height)
        shot = tab.call(
            "Page.captureScreenshot",
            format="png",
            captureBeyondViewport=True,
            clip={"x": 0, "y": 0, "width": args.width, "height": height, "scale": 1},
        )
    with open(args.out, "wb") as handle:
        handle.write(base64.b64decode(shot["data"]))
    print(args.out)


if __name__ == "__main__":
    main()
