"""``crm-graph mail poll`` and ``crm-graph helpdesk sync`` as an operator runs them from cron:
real processes against the test's database, a real dovecot and a real Request Tracker."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

from crm_graph.testing.auth import TEST_SECRET
from service_support import channel, count, customer, mail

CLI = str(Path(sys.executable).parent / "crm-graph")


async def run(settings, *args: str) -> subprocess.CompletedProcess[str]:  # noqa: ANN001
    """The command in a process of its own; this process's event loop keeps running meanwhile (a
    write of the app under test, such as a key's last use, must be able to finish)."""
    env = {**os.environ, "CRM_DATABASE_URL": settings.database_url, "CRM_SECRET_KEY": TEST_SECRET}
    return await asyncio.to_thread(subprocess.run, [CLI, *args], env=env, capture_output=True, text=True, timeout=120)


async def test_mail_poll_reads_every_mailbox_once_and_says_what_it_did(crm_client, crm_settings, dovecot, smtp_sink):
    await customer(crm_client, "ada@example.com")
    _, user, address = await channel(crm_client, dovecot, smtp_sink.port)
    await channel(crm_client, dovecot, smtp_sink.port, imapPort=1)  # a mailbox that cannot be reached
    dovecot.append(user, mail("ada@example.com", address, "From cron", "Read by the command.").as_bytes())
    done = await run(crm_settings, "mail", "poll")
    assert done.returncode == 1, done.stdout + done.stderr  # one mailbox failed; the other was read
    assert "1 read (1 tickets" in done.stdout and "cannot connect" in done.stdout
    assert await count(crm_client) == 1 and dovecot.list_uids(user, "INBOX") == []
    assert "secret" not in done.stdout + done.stderr and "Traceback" not in done.stderr


async def test_helpdesk_sync_pulls_every_connection_once(crm_client, crm_settings, rt):
    await crm_client.mutate(
        "mutation($i: CreateHelpdeskConnectionInput!) { createHelpdeskConnection(input: $i) { helpdeskConnection { id } "
        "errors { field code message } } }",
        {"i": {"name": f"RT cron {uuid.uuid4().hex[:6]}", "connector": "rt",
               "config": {**rt.config(), **rt.secrets, "referencePrefix": f"cli{uuid.uuid4().hex[:6]}/"}}})
    msg = mail(f"cli.{uuid.uuid4().hex[:6]}@example.com", "support@crm.test", "Asked RT by mail", "Hello RT.")
    rt.mail_in(msg.as_bytes())
    done = await run(crm_settings, "helpdesk", "sync")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "new in the CRM" in done.stdout and await count(crm_client) >= 1
