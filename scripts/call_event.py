"""Post a signed join/leave event to a session's call-events endpoint, as an external video
service would. Handy to try the endpoint, or to check an integration.

    .venv/bin/python scripts/call_event.py URL SECRET joined|left therapist|client [--at ISO]

URL is the session's call-events URL (shown on the session form), SECRET the practice's
call-events secret (Therapy > Configuration > Settings).
"""

import argparse
import hashlib
import hmac
import json
import sys
import time
import uuid
from datetime import datetime, timezone

import requests


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("secret")
    parser.add_argument("event", choices=["joined", "left"])
    parser.add_argument("participant", choices=["therapist", "client"])
    parser.add_argument("--at", help="ISO 8601 UTC time (default: now)")
    parser.add_argument("--id", help="event id (default: a new one)")
    args = parser.parse_args()
    at = args.at or datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    body = json.dumps(
        {
            "id": args.id or uuid.uuid4().hex,
            "event": args.event,
            "participant": args.participant,
            "at": at,
        }
    ).encode()
    timestamp = str(int(time.time()))
    signature = hmac.new(args.secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    response = requests.post(
        args.url,
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-BookConnect-Signature": f"t={timestamp},v1={signature.hexdigest()}",
        },
        timeout=10,
    )
    print(response.status_code, response.text)
    return 0 if response.ok else 1


if __name__ == "__main__":
    sys.exit(main())
