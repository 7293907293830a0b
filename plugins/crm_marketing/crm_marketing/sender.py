"""The sender: works through the recipients of SENDING campaigns, at most once per recipient.

The recipients table is the queue (every row was committed with the campaign's start, so nothing
acknowledged is lost). A row moves:

    PENDING --claim--> CLAIMED --just before the transport--> SENDING --answer--> SENT / FAILED

Each move is committed before the next step (a chunk of ``CRM_MARKETING_CHUNK_SIZE`` rows at a
time, sent over one connection), which is what makes a crash safe:

- a CLAIMED row whose sender died (its lease ended) was never handed to the transport: it goes
  back to PENDING and is sent by the next pass;
- a SENDING row whose sender died may or may not have reached the server: it becomes UNCONFIRMED
  and is never sent again (a recipient never gets the same campaign twice; the count of such
  rows is in the campaign's stats — at most ``concurrency`` x ``chunk_size`` per crash);
- a transport failure that is certainly not a delivery (refused before or at DATA, a connection
  that would not open) puts the row back to PENDING with a backoff, up to ``MAX_ATTEMPTS``;
  a permanent refusal of the recipient (5xx) fails it and suppresses the address as a hard bounce.

Just before sending, each recipient is checked again: an address suppressed or a customer who
withdrew consent since the snapshot is SKIPPED. Several senders (processes) share the work:
claims use ``FOR UPDATE SKIP LOCKED`` on PostgreSQL and the write lock on SQLite.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from aiolimiter import AsyncLimiter

from crm_graph.core.actor import SYSTEM
from crm_graph.core.clock import utcnow
from crm_graph.core.dispatch import backoff
from crm_graph.core.events import record_event
from crm_graph.core.mail import MailError, MailSession, OutgoingMail
from crm_graph.customers.models import ConsentStatus, Customer
from crm_marketing import engage, message, render, tokens
from crm_marketing.campaigns import campaign_context, campaign_payload, customer_context, start_due
from crm_marketing.models import (
    Campaign,
    CampaignStatus,
    EngagementKind,
    Link,
    Recipient,
    RecipientStatus,
    SuppressionReason,
)
from crm_marketing.runtime import Runtime

log = logging.getLogger("crm_marketing.sender")
MAX_ATTEMPTS = 5
ACTIVE = (RecipientStatus.PENDING, RecipientStatus.CLAIMED, RecipientStatus.SENDING)


@dataclass
class SendSummary:
    sent: int = 0
    failed: int = 0
    skipped: int = 0
    unconfirmed: int = 0
    retried: int = 0
    recovered: int = 0
    started: list[int] = field(default_factory=list)
    finished: list[int] = field(default_factory=list)

    def __str__(self) -> str:
        return (f"sent {self.sent}, failed {self.failed}, skipped {self.skipped}, unconfirmed {self.unconfirmed}, "
                f"to retry {self.retried}; campaigns started {len(self.started)}, finished {len(self.finished)}")


@dataclass(frozen=True)
class Job:
    recipient_id: int
    campaign: Campaign
    customer: Customer
    email: str


@dataclass(frozen=True)
class Outcome:
    job: Job
    status: RecipientStatus  # PENDING: not delivered, to try again
    error: MailError | str | None = None

    @property
    def message(self) -> str | None:
        text = self.error.message if isinstance(self.error, MailError) else self.error
        return text[:1000] if text else None


class Sender:
    def __init__(self, db: Any, runtime: Runtime) -> None:
        self.db = db
        self.runtime = runtime
        tuning = runtime.config.tuning
        self.limiter = AsyncLimiter(tuning.rate, 1) if tuning.rate > 0 else None
        self.domains: dict[str, asyncio.Semaphore] = {}
        self.links: dict[tuple[int, str], int] = {}
        self.sessions: asyncio.Queue[MailSession] = asyncio.Queue()
        self.opened = 0
        self.summary = SendSummary()

    # --- one pass ----------------------------------------------------------------------------

    async def run(self, *, max_batches: int | None = None, stop: asyncio.Event | None = None) -> SendSummary:
        """Send until no recipient is due (or ``max_batches``, or ``stop`` is set)."""
        async with self.db.writer() as session, session.begin():
            self.summary.started = await start_due(session, self.runtime, actor=SYSTEM)
        await self.recover()
        batches = 0
        try:
            while max_batches is None or batches < max_batches:
                if stop is not None and stop.is_set():
                    break
                jobs = await self.claim()
                if not jobs:
                    break
                batches += 1
                await self.send_batch(jobs)
        finally:
            await self.close_sessions()
        self.summary.finished = await self.finish()
        return self.summary

    async def recover(self) -> None:
        now = utcnow()
        async with self.db.writer() as session, session.begin():
            back = await session.execute(sa.update(Recipient).where(
                Recipient.status == RecipientStatus.CLAIMED, Recipient.lease_until < now,
            ).values(status=RecipientStatus.PENDING, lease_until=None))
            lost = await session.execute(sa.update(Recipient).where(
                Recipient.status == RecipientStatus.SENDING, Recipient.lease_until < now,
            ).values(status=RecipientStatus.UNCONFIRMED, lease_until=None,
                     error="its sender stopped while sending: maybe delivered, not sent again"))
        self.summary.recovered += back.rowcount or 0
        self.summary.unconfirmed += lost.rowcount or 0

    async def claim(self) -> list[Job]:
        now = utcnow()
        tuning = self.runtime.config.tuning
        async with self.db.writer() as session, session.begin():
            stmt = (
                sa.select(Recipient.id).join(Campaign, Campaign.id == Recipient.campaign_id)
                .where(Campaign.status == CampaignStatus.SENDING, Recipient.status == RecipientStatus.PENDING,
                       sa.or_(Recipient.next_attempt_at.is_(None), Recipient.next_attempt_at <= now))
                .order_by(Recipient.id).limit(tuning.batch_size)
            )
            if session.bind.dialect.name == "postgresql":
                stmt = stmt.with_for_update(of=Recipient, skip_locked=True)
            picked = list(await session.scalars(stmt))
            if not picked:
                return []
            await session.execute(sa.update(Recipient).where(Recipient.id.in_(picked)).values(
                status=RecipientStatus.CLAIMED, lease_until=now + timedelta(seconds=tuning.lease)))
            rows = (await session.execute(sa.select(Recipient.id, Recipient.campaign_id, Recipient.customer_id, Recipient.email)
                                          .where(Recipient.id.in_(picked)).order_by(Recipient.id))).all()
            campaigns = {c.id: c for c in await session.scalars(
                sa.select(Campaign).where(Campaign.id.in_({r.campaign_id for r in rows})))}
            customers = {c.id: c for c in await session.scalars(
                sa.select(Customer).where(Customer.id.in_({r.customer_id for r in rows})))}
            for obj in (*campaigns.values(), *customers.values()):
                session.expunge(obj)
        return [Job(r.id, campaigns[r.campaign_id], customers[r.customer_id], r.email) for r in rows if r.customer_id in customers]

    async def send_batch(self, jobs: Sequence[Job]) -> None:
        """Skip who may no longer get the mail, then send the rest in chunks, one transport session
        per chunk and up to ``concurrency`` chunks at once."""
        by_list: dict[str, set[str]] = {}
        for job in jobs:
            by_list.setdefault(job.campaign.list_key, set()).add(job.email)
        async with self.db.reader() as session:
            blocked = {key: await engage.suppressed(session, emails, key) for key, emails in by_list.items()}
        skipped = [j for j in jobs if j.email in blocked[j.campaign.list_key] or j.customer.deleted_at is not None
                   or j.customer.consent_status is not ConsentStatus.OPTED_IN]
        if skipped:
            await self.record([Outcome(j, RecipientStatus.SKIPPED, error="suppressed or no longer opted in") for j in skipped])
        ready = [j for j in jobs if j not in skipped]
        size = self.runtime.config.tuning.chunk_size
        gate = asyncio.Semaphore(self.runtime.config.tuning.concurrency)

        async def chunk(part: Sequence[Job]) -> None:
            async with gate:
                await self.deliver(part)

        parts = [ready[i:i + size] for i in range(0, len(ready), size)]
        results = await asyncio.gather(*(chunk(part) for part in parts), return_exceptions=True)
        for part, result in zip(parts, results, strict=True):
            if isinstance(result, BaseException):  # a render or database failure: the leases end, see recover()
                log.error("recipients %s..%s: %s", part[0].recipient_id, part[-1].recipient_id, result)

    # --- one chunk ---------------------------------------------------------------------------

    async def deliver(self, jobs: Sequence[Job]) -> None:
        """Mark the chunk SENDING (one commit), hand each message to the transport, then record
        every answer (one commit). A message not handed over (the connection would not open,
        or broke before it) goes back to PENDING; see the module docstring for the rest."""
        mails = {job.recipient_id: await self.compose(job) for job in jobs}
        try:
            mail_session = await self._session()
        except MailError as exc:
            await self.record([Outcome(job, RecipientStatus.PENDING, error=exc) for job in jobs])
            return
        now = utcnow()
        async with self.db.writer() as session, session.begin():
            taken = set(await session.scalars(sa.update(Recipient).where(
                Recipient.id.in_([j.recipient_id for j in jobs]), Recipient.status == RecipientStatus.CLAIMED,
            ).values(status=RecipientStatus.SENDING, lease_until=now + timedelta(seconds=self.runtime.config.tuning.lease))
                .returning(Recipient.id)))
        outcomes: list[Outcome] = []
        try:
            for job in (j for j in jobs if j.recipient_id in taken):  # the others' leases ended: another sender has them
                domain = job.email.rpartition("@")[2]
                gate = self.domains.setdefault(domain, asyncio.Semaphore(self.runtime.config.tuning.domain_concurrency))
                if self.limiter is not None:
                    await self.limiter.acquire()
                try:
                    async with gate:
                        await mail_session.send(mails[job.recipient_id])
                except MailError as exc:  # the session reconnects for the next message when it must
                    status = (RecipientStatus.UNCONFIRMED if exc.accepted_maybe else
                              RecipientStatus.FAILED if exc.permanent else RecipientStatus.PENDING)
                    outcomes.append(Outcome(job, status, error=exc))
                    continue
                outcomes.append(Outcome(job, RecipientStatus.SENT))
        finally:
            self.sessions.put_nowait(mail_session)
            if outcomes:
                await self.record(outcomes)

    async def record(self, outcomes: Sequence[Outcome]) -> None:
        now = utcnow()
        table = Recipient.__table__
        async with self.db.writer() as session, session.begin():
            sent = [o for o in outcomes if o.status is RecipientStatus.SENT]
            if sent:
                await session.execute(
                    table.update().where(table.c.id == sa.bindparam("rid")).values(
                        status=RecipientStatus.SENT, sent_at=now, lease_until=None, error=None,
                        message_id=sa.bindparam("mid")),
                    [{"rid": o.job.recipient_id,
                      "mid": message.message_id(self.runtime.config, o.job.campaign.id, o.job.recipient_id)} for o in sent])
                self.summary.sent += len(sent)
            for o in outcomes:
                if o.status is RecipientStatus.SENT:
                    continue
                values: dict[str, Any] = {"status": o.status, "lease_until": None, "error": o.message}
                if o.status is RecipientStatus.PENDING:
                    attempts = int(await session.scalar(sa.select(Recipient.attempts).where(
                        Recipient.id == o.job.recipient_id)) or 0) + 1
                    values["attempts"] = attempts
                    if attempts >= MAX_ATTEMPTS:
                        values["status"] = RecipientStatus.FAILED
                    else:
                        values["next_attempt_at"] = now + timedelta(seconds=backoff(attempts, base=5.0, cap=900.0))
                await session.execute(sa.update(Recipient).where(Recipient.id == o.job.recipient_id).values(**values))
                status = values["status"]
                if status is RecipientStatus.FAILED:
                    self.summary.failed += 1
                elif status is RecipientStatus.UNCONFIRMED:
                    self.summary.unconfirmed += 1
                elif status is RecipientStatus.SKIPPED:
                    self.summary.skipped += 1
                else:
                    self.summary.retried += 1
                code = o.error.code if isinstance(o.error, MailError) else None
                if status is RecipientStatus.FAILED and code is not None and 500 <= code < 600:
                    # The server refused the recipient for good: a hard bounce, told at once.
                    await engage.suppress(session, email=o.job.email, reason=SuppressionReason.HARD_BOUNCE,
                                          campaign_id=o.job.campaign.id, detail=o.message)
                    await engage.record_engagement(session, kind=EngagementKind.BOUNCED, campaign_id=o.job.campaign.id,
                                                   recipient_id=o.job.recipient_id, customer_id=o.job.customer.id,
                                                   detail=o.message)

    async def compose(self, job: Job) -> OutgoingMail:
        runtime, campaign = self.runtime, job.campaign
        from crm_marketing.consent import unsubscribe_token
        from crm_marketing.tracking import click_url, open_url

        unsubscribe = runtime.url(f"/mail/u/{unsubscribe_token(runtime, recipient_id=job.recipient_id)}")
        context = {"customer": customer_context(job.customer, job.email), "campaign": campaign_context(campaign),
                   "unsubscribe_url": unsubscribe}
        links: dict[str, int] = {}
        if campaign.track_clicks:
            first = render.render(subject=campaign.subject, html=campaign.html, text=campaign.text, context=context)
            for url in first.links:
                links[url] = await self.link_id(campaign.id, url)
        out = render.render(
            subject=campaign.subject, html=campaign.html, text=campaign.text, context=context,
            click_url=(lambda url: click_url(runtime, job.recipient_id, links[url]) if url in links else url)
            if campaign.track_clicks else None,
            open_url=open_url(runtime, job.recipient_id) if campaign.track_opens else None,
        )
        msgid = message.message_id(runtime.config, campaign.id, job.recipient_id)
        content = message.build(
            runtime.config, from_address=campaign.from_address, to_address=job.email, to_name=job.customer.display_name,
            subject=out.subject, html=out.html, text=out.text, msgid=msgid, reply_to=campaign.reply_to,
            unsubscribe_url=unsubscribe, list_id=f"<{campaign.list_key or 'all'}.{runtime.config.return_domain}>",
            feedback_id=f"c{campaign.id}:crm-graph",
        )
        envelope = message.return_path(runtime.config, tokens.verp_token(runtime.key, job.recipient_id))
        return OutgoingMail(content=content, envelope_from=envelope, recipients=[job.email], message_id=msgid)

    async def link_id(self, campaign_id: int, url: str) -> int:
        key = (campaign_id, url)
        if key not in self.links:
            import hashlib

            digest = hashlib.sha256(url.encode()).hexdigest()
            async with self.db.writer() as session, session.begin():
                await session.execute(engage._insert(session)(Link).values(
                    campaign_id=campaign_id, url_hash=digest, url=url, created_at=utcnow(),
                ).on_conflict_do_nothing(index_elements=["campaign_id", "url_hash"]))
                self.links[key] = int(await session.scalar(sa.select(Link.id).where(
                    Link.campaign_id == campaign_id, Link.url_hash == digest)))
        return self.links[key]

    async def finish(self) -> list[int]:
        """Mark SENT the SENDING campaigns with nothing left to send."""
        done = []
        async with self.db.writer() as session, session.begin():
            for campaign in await session.scalars(sa.select(Campaign).where(Campaign.status == CampaignStatus.SENDING)):
                left = await session.scalar(sa.select(sa.func.count()).select_from(Recipient).where(
                    Recipient.campaign_id == campaign.id, Recipient.status.in_(ACTIVE)))
                if left:
                    continue
                counts = dict((await session.execute(
                    sa.select(Recipient.status, sa.func.count()).where(Recipient.campaign_id == campaign.id)
                    .group_by(Recipient.status))).all())
                campaign.status, campaign.finished_at = CampaignStatus.SENT, utcnow()
                record_event(session, type="campaign.sent", entity_type="Campaign", entity_id=campaign.id, actor=SYSTEM,
                             payload={**campaign_payload(campaign), "sent": counts.get(RecipientStatus.SENT, 0),
                                      "failed": counts.get(RecipientStatus.FAILED, 0),
                                      "skipped": counts.get(RecipientStatus.SKIPPED, 0)})
                done.append(campaign.id)
        return done

    # --- transport sessions ------------------------------------------------------------------

    async def _session(self) -> MailSession:
        try:
            return self.sessions.get_nowait()
        except asyncio.QueueEmpty:
            self.opened += 1
            return await self.runtime.transport().open(self.runtime.transport_config())

    async def _drop(self, mail_session: MailSession) -> None:
        try:
            await mail_session.aclose()
        except Exception:  # noqa: BLE001 - a broken connection may fail to close
            pass

    async def close_sessions(self) -> None:
        while not self.sessions.empty():
            await self._drop(self.sessions.get_nowait())


async def send_pending(db: Any, runtime: Runtime, *, max_batches: int | None = None,
                       stop: asyncio.Event | None = None) -> SendSummary:
    return await Sender(db, runtime).run(max_batches=max_batches, stop=stop)


@dataclass(frozen=True)
class TestResult:
    address: str
    error: str | None


async def send_test(runtime: Runtime, campaign: Campaign, addresses: Sequence[str]) -> list[TestResult]:
    """The campaign to ``addresses`` now, with sample customer fields, "[Test]" in the subject,
    links not tracked. Not recorded and not retried: the answer says what happened to each."""
    mail_session = await runtime.transport().open(runtime.transport_config())
    results = []
    try:
        for address in addresses:
            context = {**render.SAMPLE, "customer": {**render.SAMPLE["customer"], "email": address},
                       "campaign": campaign_context(campaign), "unsubscribe_url": runtime.url("/mail/u/test")}
            out = render.render(subject=campaign.subject, html=campaign.html, text=campaign.text, context=context)
            content = message.build(runtime.config, from_address=campaign.from_address, to_address=address, to_name=None,
                                    subject=f"[Test] {out.subject}", html=out.html, text=out.text, reply_to=campaign.reply_to)
            try:
                await mail_session.send(OutgoingMail(content=content, recipients=[address],
                                                     envelope_from=message.return_path(runtime.config, "test")))
                results.append(TestResult(address, None))
            except MailError as exc:
                results.append(TestResult(address, exc.message))
    finally:
        await mail_session.aclose()
    return results
