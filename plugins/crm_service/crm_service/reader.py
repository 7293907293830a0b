"""Reading the support mailboxes: one pass over a channel (``crm-graph mail poll``) and the
watchers that keep a connection in IDLE for each channel in `serve` and `crm-graph worker`.

A pass, per channel:

- UIDVALIDITY changed (the folder was recreated): the checkpoint starts again from 0; the mails
  read before are recognised by their inbound rows, not read as new.
- Mails with a UID above the checkpoint are fetched one at a time, in UID order, and each one's
  ticket or comment is committed *together with* the checkpoint moving to its UID. Only then is
  the mail moved to the processed folder. A connection lost at any point leaves mails to be
  read again or moved again, never a mail skipped, never one taken twice.
- Mails at or below the checkpoint still in the folder (committed, their move lost) are moved.
- A mail that fails for an unexpected reason is kept whole as a FAILED inbound row (its error
  in the log) and the pass goes on: one poisoned mail does not stop a mailbox.

Several processes may read one mailbox (several servers over one PostgreSQL): each mail's row
is written once, the channel row is locked while a mail is taken, the loser of a race moves on.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from crm_graph.core.clock import utcnow
from crm_graph.mail.imap import Mailbox, MailboxError
from crm_graph.settings import Settings
from crm_service.channels import imap_account
from crm_service.config import ServiceSettings
from crm_service.intake import DuplicateMail, dedupe_key, ingest
from crm_service.content import parse_mail
from crm_service.models import InboundMail, InboundOutcome, MailChannel

log = logging.getLogger("crm_service.reader")


@dataclass
class PassResult:
    channel: str
    read: int = 0  # mails fetched and taken this pass
    tickets: int = 0
    comments: int = 0
    ignored: int = 0  # auto-replies, bounces, our own, floods
    queued: int = 0
    failed: int = 0
    duplicates: int = 0  # recognised as read before
    moved: int = 0
    error: str | None = None

    def count(self, outcome: InboundOutcome, duplicate: bool) -> None:
        if duplicate:
            self.duplicates += 1
            return
        self.read += 1
        if outcome is InboundOutcome.TICKET:
            self.tickets += 1
        elif outcome is InboundOutcome.COMMENT:
            self.comments += 1
        elif outcome is InboundOutcome.QUEUED:
            self.queued += 1
        elif outcome is InboundOutcome.FAILED:
            self.failed += 1
        else:
            self.ignored += 1

    def __str__(self) -> str:
        if self.error:
            return f"{self.channel}: {self.error}"
        return (f"{self.channel}: {self.read} read ({self.tickets} tickets, {self.comments} comments, "
                f"{self.queued} queued, {self.ignored} ignored, {self.failed} failed), "
                f"{self.duplicates} seen before, {self.moved} moved")


async def read_channel(db: Any, app_settings: Settings, settings: ServiceSettings, channel_id: int,
                       box: Mailbox | None = None) -> PassResult:
    """One pass over a channel's folder (see the module's note). With ``box``, on that open
    connection; otherwise on one of its own. IMAP trouble raises MailboxError."""
    async with db.reader() as session:
        channel = await session.get(MailChannel, channel_id)
        if channel is None:
            raise LookupError(f"mail channel {channel_id} is gone")
        account = imap_account(app_settings, channel, settings.imap_timeout)
        result = PassResult(channel.name)
    if box is None:
        async with Mailbox(account) as own:
            return await _pass(db, settings, channel_id, own, result)
    return await _pass(db, settings, channel_id, box, result)


async def _pass(db: Any, settings: ServiceSettings, channel_id: int, box: Mailbox, result: PassResult) -> PassResult:
    async with db.writer() as session, session.begin():
        channel = await session.get(MailChannel, channel_id, with_for_update=True)
        assert channel is not None
        if box.uidvalidity is not None and channel.uidvalidity != box.uidvalidity:
            if channel.uidvalidity is not None:
                log.warning("channel %s: UIDVALIDITY changed %s -> %s; reading the folder again",
                            channel.name, channel.uidvalidity, box.uidvalidity)
            channel.uidvalidity, channel.last_uid = box.uidvalidity, 0
        processed, checkpoint = channel.processed_folder, channel.last_uid
    await box.ensure_folder(processed)
    uids = await box.uids()
    for uid in (u for u in uids if u <= checkpoint):
        await box.move(uid, processed)
        result.moved += 1
    new = [u for u in uids if u > checkpoint]
    for start in range(0, len(new), settings.fetch_batch):
        batch = new[start:start + settings.fetch_batch]
        sizes = await box.sizes(batch)
        for uid in batch:
            if uid not in sizes:
                continue  # gone meanwhile
            oversize = sizes[uid] if sizes[uid] > settings.max_message_bytes else None
            raw = await box.fetch(uid, headers_only=oversize is not None)
            if raw is None:
                continue
            outcome, duplicate = await _take(db, settings, channel_id, uid, raw, oversize)
            result.count(outcome, duplicate)
            await box.move(uid, processed)
            result.moved += 1
    async with db.writer() as session, session.begin():
        await session.execute(sa.update(MailChannel).where(MailChannel.id == channel_id)
                              .values(last_polled_at=utcnow(), last_error=None))
    return result


async def _take(db: Any, settings: ServiceSettings, channel_id: int, uid: int, raw: bytes,
                oversize: int | None) -> tuple[InboundOutcome, bool]:
    """Take one mail and move the checkpoint to its UID, in one transaction."""
    try:
        async with db.writer() as session, session.begin():
            channel = await session.get(MailChannel, channel_id, with_for_update=True)
            assert channel is not None
            if uid <= channel.last_uid:  # another reader took it meanwhile
                return InboundOutcome.COMMENT, True
            intake = await ingest(session, settings, channel, raw, uid=uid, oversize=oversize)
            channel.last_uid = uid
            return intake.outcome, intake.duplicate
    except DuplicateMail:
        await _advance(db, channel_id, uid)
        return InboundOutcome.COMMENT, True
    except Exception:  # noqa: BLE001 - one bad mail must not stop the mailbox; it is kept whole
        log.exception("channel %s: mail with UID %s could not be taken; kept as FAILED", channel_id, uid)
        await _keep_failed(db, channel_id, uid, raw)
        return InboundOutcome.FAILED, False


async def _advance(db: Any, channel_id: int, uid: int) -> None:
    async with db.writer() as session, session.begin():
        await session.execute(sa.update(MailChannel).where(MailChannel.id == channel_id, MailChannel.last_uid < uid)
                              .values(last_uid=uid))


async def _keep_failed(db: Any, channel_id: int, uid: int, raw: bytes) -> None:
    try:
        mail = parse_mail(raw)
        key, sender, subject = dedupe_key(mail, raw), mail.from_address, mail.subject[:300]
    except Exception:  # noqa: BLE001 - the parser is meant never to raise; if it does, the bytes still count
        import hashlib

        key, sender, subject = "sha256:" + hashlib.sha256(raw).hexdigest(), None, ""
    async with db.writer() as session, session.begin():
        channel = await session.get(MailChannel, channel_id, with_for_update=True)
        assert channel is not None
        exists = await session.scalar(sa.select(InboundMail.id).where(InboundMail.channel_id == channel_id,
                                                                      InboundMail.dedupe_key == key))
        if exists is None:
            session.add(InboundMail(channel_id=channel_id, dedupe_key=key, uidvalidity=channel.uidvalidity, uid=uid,
                                    from_address=sender, subject=subject, outcome=InboundOutcome.FAILED,
                                    raw=raw, received_at=utcnow()))
        channel.last_uid = max(channel.last_uid, uid)


async def read_all(db: Any, app_settings: Settings, settings: ServiceSettings) -> list[PassResult]:
    """One pass over every active channel; a channel that cannot be read is reported, not fatal."""
    async with db.reader() as session:
        ids = list(await session.scalars(sa.select(MailChannel.id).where(MailChannel.active.is_(True))
                                         .order_by(MailChannel.id)))
    out = []
    for channel_id in ids:
        try:
            out.append(await read_channel(db, app_settings, settings, channel_id))
        except (MailboxError, LookupError) as exc:
            await _record_error(db, channel_id, str(exc))
            out.append(PassResult(str(channel_id), error=str(exc)))
    return out


async def _record_error(db: Any, channel_id: int, error: str) -> None:
    async with db.writer() as session, session.begin():
        await session.execute(sa.update(MailChannel).where(MailChannel.id == channel_id)
                              .values(last_error=error[:2000], last_polled_at=utcnow()))


# --- watching with IDLE ---------------------------------------------------------------------------


class Watchers:
    """One task per active channel: connect, read, IDLE until mail comes, read again; on any
    failure reconnect after a backoff (1 s doubling to CRM_SERVICE_MAX_BACKOFF). ``sync()``
    starts watchers for new channels and stops those of channels gone or switched off."""

    def __init__(self, db: Any, app_settings: Settings, settings: ServiceSettings) -> None:
        self.db, self.app_settings, self.settings = db, app_settings, settings
        self.tasks: dict[int, asyncio.Task[None]] = {}

    async def sync(self) -> str:
        async with self.db.reader() as session:
            active = set(await session.scalars(sa.select(MailChannel.id).where(MailChannel.active.is_(True))))
        for channel_id in set(self.tasks) - active:
            self.tasks.pop(channel_id).cancel()
        for channel_id, task in list(self.tasks.items()):
            if task.done():
                del self.tasks[channel_id]
        for channel_id in active - set(self.tasks):
            self.tasks[channel_id] = asyncio.create_task(self.watch(channel_id), name=f"mail-watch-{channel_id}")
        return f"{len(self.tasks)} mailboxes watched"

    async def watch(self, channel_id: int) -> None:
        backoff = 1.0
        while True:
            try:
                async with self.db.reader() as session:
                    channel = await session.get(MailChannel, channel_id)
                    if channel is None or not channel.active:
                        return
                    account = imap_account(self.app_settings, channel, self.settings.imap_timeout)
                async with Mailbox(account) as box:
                    while True:
                        result = await read_channel(self.db, self.app_settings, self.settings, channel_id, box=box)
                        if result.read:
                            log.info("%s", result)
                        backoff = 1.0
                        await box.wait_for_mail(self.settings.idle_seconds)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a watcher reconnects whatever went wrong
                log.warning("mail channel %s: %s; reconnecting in %.0f s", channel_id, exc, backoff)
                try:
                    await _record_error(self.db, channel_id, str(exc))
                except Exception:  # noqa: BLE001 - the database may be what failed
                    pass
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.settings.max_backoff)

    async def aclose(self) -> None:
        tasks = list(self.tasks.values())
        self.tasks.clear()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
