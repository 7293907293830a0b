"""Messages per second from a started campaign to an SMTP server on loopback (aiosmtpd in this
process), against aiosmtplib alone sending the same number of ready-made messages over one
connection (the transport floor), in the same run.

    .venv/bin/python bench/marketing_send.py [--recipients 2000] [--concurrency 8] [--track] [--postgresql]

Makes --recipients OPTED_IN customers (through createCustomers, 100 per call), a DYNAMIC segment
of them, a campaign (tracked links and pixel with --track), starts it, and times the sender until
the campaign is SENT: per message a template render, CSS inlining, the claim and two committed
status changes, and the SMTP transaction. Prints the figures and the ratio; nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiosmtplib  # noqa: E402
from aiosmtpd.controller import Controller  # noqa: E402

from bench.common import api_client  # noqa: E402


class Counting:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server, session, envelope):  # noqa: ANN001, ANN201
        self.count += 1
        return "250 2.0.0 Ok"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def floor(port: int, messages: list[bytes]) -> float:
    """aiosmtplib alone: the same messages, one connection, one after the other."""
    smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port)
    await smtp.connect()
    start = time.perf_counter()
    for i, content in enumerate(messages):
        await smtp.sendmail("bounces@example.com", [f"m{i}@example.com"], content)
    elapsed = time.perf_counter() - start
    await smtp.quit()
    return elapsed


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--track", action="store_true")
    parser.add_argument("--postgresql", action="store_true")
    args = parser.parse_args()

    handler, port = Counting(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    os.environ.update({"CRM_SMTP_PORT": str(port), "CRM_MAIL_FROM": "News <news@example.com>",
                       "CRM_PUBLIC_URL": "https://crm.example.com", "CRM_MARKETING_CONCURRENCY": str(args.concurrency),
                       "CRM_MARKETING_DOMAIN_CONCURRENCY": str(args.concurrency)})
    async with api_client("marketing", args.postgresql) as (app, client):
        from crm_marketing.runtime import runtime_of
        from crm_marketing.sender import send_pending

        for first in range(0, args.recipients, 100):
            inputs = [{"kind": "PERSON", "firstName": f"F{i}", "lastName": "Bench", "tags": ["news"],
                       "emails": [{"address": f"r{i}@example.com", "primary": True}],
                       "emailConsent": {"status": "OPTED_IN"}} for i in range(first, min(first + 100, args.recipients))]
            await client.mutate("mutation($i: [CreateCustomerInput!]!) { createCustomers(inputs: $i) "
                                "{ createdCount errors { code } } }", {"i": inputs})
        segment = (await client.mutate("mutation($i: CreateSegmentInput!) { createSegment(input: $i) "
                                       "{ segment { id } errors { code } } }",
                                       {"i": {"name": "news", "kind": "DYNAMIC", "filter": {"tags": {"containsAny": ["news"]}}}}))["segment"]["id"]
        html = ("<html><head><style>p { font-family: sans-serif; color: #222 } a { color: #06c }</style></head><body>"
                "<p>Hello {{ customer.first_name }},</p><p>Our <a href=\"https://shop.example.com/sale\">sale</a> "
                "starts today; see <a href=\"https://shop.example.com/new\">what is new</a>.</p></body></html>")
        campaign = (await client.mutate("mutation($i: CreateCampaignInput!) { createCampaign(input: $i) "
                                        "{ campaign { id } errors { code message } } }",
                                        {"i": {"name": "Bench", "subject": "Hello {{ customer.first_name }}", "segmentId": segment,
                                               "html": html, "trackOpens": args.track, "trackClicks": args.track}}))["campaign"]["id"]
        await client.mutate("mutation($id: ID!) { startCampaign(id: $id) { campaign { audience } errors { code } } }",
                            {"id": campaign})
        runtime = runtime_of(app.state.settings, app.state.plugins)
        start = time.perf_counter()
        summary = await send_pending(app.state.db, runtime)
        elapsed = time.perf_counter() - start
    assert summary.sent == args.recipients == handler.count, (summary, handler.count)

    sample = (b"From: News <news@example.com>\r\nTo: r@example.com\r\nSubject: Hello\r\nMIME-Version: 1.0\r\n"
              b"Content-Type: text/plain; charset=utf-8\r\n\r\n" + b"Hello there, our sale starts today.\r\n" * 40)
    raw = await floor(port, [sample] * args.recipients)
    controller.stop()

    db = "PostgreSQL" if args.postgresql else "SQLite"
    print(f"campaign to {args.recipients} recipients on {db}, concurrency {args.concurrency}, tracking {'on' if args.track else 'off'}:")
    print(f"  sender           {args.recipients / elapsed:8.0f} messages/s ({elapsed:.2f} s)")
    print(f"  aiosmtplib alone {args.recipients / raw:8.0f} messages/s ({raw:.2f} s; ready-made messages, one connection)")
    print(f"  ratio            sender / aiosmtplib alone {(args.recipients / elapsed) / (args.recipients / raw):.2f}")


if __name__ == "__main__":
    asyncio.run(main())
