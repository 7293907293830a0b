"""Mail channels: the support mailboxes, made and changed through the API.

A channel's passwords are sealed (``crm_graph.core.sealed``) and never shown; everything else
is validated here so a channel that cannot work is refused with the field at fault rather than
failing later in the reader.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from crm_graph.core import errors as codes
from crm_graph.core.clock import utcnow
from crm_graph.core.errors import ErrorCollector, FieldError, NotFound, ValidationFailed
from crm_graph.core.sealed import SealedError, seal, unseal
from crm_graph.customers import validation as v
from crm_graph.mail.imap import MailboxAccount
from crm_graph.settings import Settings
from crm_service.models import MailChannel, UnknownSenders

SEAL_PURPOSE = "crm_service mail channel"
TLS_IMAP = ("none", "tls")
TLS_SMTP = ("none", "starttls", "tls")


def _text(data: Mapping[str, Any], key: str, limit: int, errors: ErrorCollector, *, required: bool = False,
          default: str | None = None) -> str | None:
    value = data.get(key)
    if value is None:
        if required:
            errors.add(key, codes.REQUIRED, f"{key} is required.")
        return default
    try:
        return v.text(value, limit, required=required) or default
    except v.InvalidValue as exc:
        errors.add(key, codes.REQUIRED if required and not str(value).strip() else codes.INVALID_VALUE, str(exc))
        return None


def _port(data: Mapping[str, Any], key: str, errors: ErrorCollector, *, required: bool) -> int | None:
    value = data.get(key)
    if value is None:
        if required:
            errors.add(key, codes.REQUIRED, f"{key} is required.")
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        errors.add(key, codes.INVALID_VALUE, f"{key} is a TCP port, 1 to 65535.")
        return None
    return value


def _choice(data: Mapping[str, Any], key: str, allowed: tuple[str, ...], default: str, errors: ErrorCollector) -> str:
    value = data.get(key)
    if value is None:
        return default
    if value not in allowed:
        errors.add(key, codes.INVALID_VALUE, f"{key} is one of {', '.join(allowed)}.")
        return default
    return str(value)


def _apply(channel: MailChannel, data: Mapping[str, Any], errors: ErrorCollector, *, creating: bool) -> dict[str, str]:
    """Set the fields ``data`` names; returns the passwords given (to seal)."""
    if creating or "name" in data:
        channel.name = _text(data, "name", 200, errors, required=True) or ""
    if creating or "address" in data:
        try:
            channel.address = v.email(data.get("address"))
        except v.InvalidValue as exc:
            errors.add("address", codes.REQUIRED if not data.get("address") else codes.INVALID_EMAIL, str(exc))
    for key, attr, limit in (("imapHost", "imap_host", 255), ("imapUsername", "imap_username", 320),
                             ("smtpHost", "smtp_host", 255)):
        if creating or key in data:
            setattr(channel, attr, _text(data, key, limit, errors, required=True) or "")
    for key, attr in (("imapPort", "imap_port"), ("smtpPort", "smtp_port")):
        if creating or key in data:
            setattr(channel, attr, _port(data, key, errors, required=True) or 0)
    if creating or "imapFolder" in data:
        channel.imap_folder = _text(data, "imapFolder", 255, errors, default="INBOX") or "INBOX"
    if creating or "processedFolder" in data:
        channel.processed_folder = _text(data, "processedFolder", 255, errors, default="Processed") or "Processed"
    if channel.imap_folder == channel.processed_folder:
        errors.add("processedFolder", codes.INVALID_VALUE, "Processed mail goes to another folder than the one read.")
    if creating or "smtpUsername" in data:
        channel.smtp_username = _text(data, "smtpUsername", 320, errors)
    if creating or "imapTls" in data:
        channel.imap_tls = _choice(data, "imapTls", TLS_IMAP, "none", errors)
    if creating or "smtpTls" in data:
        channel.smtp_tls = _choice(data, "smtpTls", TLS_SMTP, "none", errors)
    if creating or "unknownSenders" in data:
        name = _choice(data, "unknownSenders", tuple(u.name for u in UnknownSenders), "CREATE", errors)
        channel.unknown_senders = UnknownSenders[name]
    if creating or "active" in data:
        active = data.get("active", True)
        if not isinstance(active, bool):
            errors.add("active", codes.INVALID_VALUE, "active is true or false.")
        channel.active = active is not False
    given: dict[str, str] = {}
    for key in ("imapPassword", "smtpPassword"):
        value = data.get(key)
        if value is None:
            if creating and key == "imapPassword":
                errors.add(key, codes.REQUIRED, "imapPassword is required.")
            continue
        if not isinstance(value, str) or not value or len(value) > 1000:
            errors.add(key, codes.INVALID_VALUE, f"{key} is a non-empty string.")
        else:
            given[key] = value
    return given


async def _check_name(session: AsyncSession, channel: MailChannel, errors: ErrorCollector) -> None:
    clash = await session.scalar(sa.select(MailChannel.id).where(MailChannel.name == channel.name,
                                                                 MailChannel.id != (channel.id or 0)))
    if clash is not None:
        errors.add("name", codes.DUPLICATE, f"A mail channel named {channel.name!r} exists.")


async def create_mail_channel(session: AsyncSession, settings: Settings, data: Mapping[str, Any]) -> MailChannel:
    errors = ErrorCollector()
    now = utcnow()
    channel = MailChannel(uidvalidity=None, last_uid=0, created_at=now, updated_at=now)
    given = _apply(channel, data, errors, creating=True)
    if not errors:
        await _check_name(session, channel, errors)
    errors.raise_if_any()
    channel.secrets = seal(settings, SEAL_PURPOSE, given)
    session.add(channel)
    await session.flush()
    return channel


async def update_mail_channel(session: AsyncSession, settings: Settings, channel_id: int,
                              data: Mapping[str, Any]) -> MailChannel:
    channel = await session.get(MailChannel, channel_id, with_for_update=True)
    if channel is None:
        raise NotFound("The mail channel")
    errors = ErrorCollector()
    moved = any(k in data for k in ("imapHost", "imapPort", "imapUsername", "imapFolder"))
    given = _apply(channel, data, errors, creating=False)
    if not errors and "name" in data:
        await _check_name(session, channel, errors)
    if errors:
        await session.rollback()
        raise ValidationFailed(errors.errors)
    if given:
        try:
            kept = unseal(settings, SEAL_PURPOSE, channel.secrets) if channel.secrets else {}
        except SealedError:
            kept = {}
        channel.secrets = seal(settings, SEAL_PURPOSE, {**kept, **given})
    if moved:  # another mailbox: its UIDs are not this one's
        channel.uidvalidity, channel.last_uid = None, 0
    channel.last_error = None
    channel.updated_at = utcnow()
    return channel


def passwords(settings: Settings, channel: MailChannel) -> dict[str, str]:
    """The channel's passwords; a ValidationFailed naming the channel when they cannot be opened."""
    try:
        return unseal(settings, SEAL_PURPOSE, channel.secrets) if channel.secrets else {}
    except SealedError as exc:
        raise ValidationFailed([FieldError("imapPassword", codes.INVALID_STATE, f"Mail channel {channel.name!r}: {exc}")]) from exc


def imap_account(settings: Settings, channel: MailChannel, timeout: float) -> MailboxAccount:
    return MailboxAccount(host=channel.imap_host, port=channel.imap_port, username=channel.imap_username,
                          password=passwords(settings, channel).get("imapPassword", ""), folder=channel.imap_folder,
                          tls=channel.imap_tls, timeout=timeout)


def smtp_config(settings: Settings, channel: MailChannel) -> dict[str, Any]:
    """The transport configuration replies from this channel go out with."""
    out: dict[str, Any] = {"host": channel.smtp_host, "port": channel.smtp_port, "tls": channel.smtp_tls}
    if channel.smtp_username:
        out["username"] = channel.smtp_username
        out["password"] = passwords(settings, channel).get("smtpPassword", "")
    return out
