"""What came back to the bounce address, in plain terms: ``classify(raw)`` says whether a mail is
a hard or soft bounce, a spam complaint, an automatic reply or something else, for whom, and
under which VERP token; ``read_mailbox`` feeds every mail of an IMAP folder to a handler.

No database here: the caller records ``Inbound.message_id`` in its inbound idempotency table
before acting on a result, so the same mail read twice changes nothing the second time.

How a mail is classified, in this order (first match wins):

1. a delivery status notification (RFC 3464 ``message/delivery-status`` part): HARD or SOFT.
   flufl.bounce finds the failed recipients (``Action: failed`` permanent, ``delayed``
   temporary); the status class decides when there is one (``5.x.x`` HARD, ``4.x.x`` SOFT: a
   full mailbox or greylisting says nothing about the address itself). A DSN whose recipients
   were all delivered or relayed is OTHER. MTAs often write a generic ``5.0.0`` and put the
   remote server's own code in Diagnostic-Code; the more precise code of the same class wins;
2. an ARF feedback report (RFC 5965, ``report-type=feedback-report``): COMPLAINT, for the
   Original-Rcpt-To (else the To of the enclosed original message);
3. an automatic reply (RFC 3834 ``Auto-Submitted`` other than ``no``, ``Precedence:
   auto_reply/bulk/junk``, ``X-Autoreply``/``X-Autorespond``, an out-of-office subject):
   AUTO_REPLY, never a bounce, unless it comes from a mailer daemon;
4. a bounce in an older non-standard format, found by flufl.bounce's heuristics: HARD or SOFT;
5. anything else, including garbage: OTHER. ``classify`` never raises on bad bytes.
"""

from __future__ import annotations

import email
import email.header
import email.utils
import enum
import hashlib
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from email.message import Message
from email.parser import HeaderParser

import flufl.bounce._scan
from flufl.bounce import all_failures

from crm_graph.mail.imap import Mailbox, MailboxAccount, MailboxError  # noqa: F401 - MailboxError is part of this API

DETAIL_MAX = 500
MESSAGE_ID_MAX = 255
HEURISTIC_MAX = 128 * 1024  # bytes of a mail without a DSN part that flufl's heuristics read
TOKEN_HEADERS = ("Delivered-To", "X-Original-To", "Envelope-To", "To")
AUTO_PRECEDENCE = {"auto_reply", "bulk", "junk"}
DAEMONS = {"mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon"}
AUTO_SUBJECT = re.compile(
    r"out of (the )?office|automatic reply|auto[- ]?reply|autoresponse|away from (the )?office|on vacation|"
    r"abwesenheit|r[ée]ponse automatique|respuesta autom[áa]tica",
    re.IGNORECASE,
)
ENHANCED = re.compile(r"(?<![\d.])([245])\.(\d{1,3})\.(\d{1,3})(?![\d.])")


class Kind(enum.Enum):
    """What a mail at the bounce address means for the address it is about."""

    HARD = "hard"  # permanent failure: stop mailing the address
    SOFT = "soft"  # temporary failure: count it, the address may recover
    COMPLAINT = "complaint"  # the recipient reported the mail as spam
    AUTO_REPLY = "auto_reply"  # a vacation or other automatic answer: not a bounce
    OTHER = "other"  # a human reply, a success notice, garbage


@dataclass(frozen=True)
class Inbound:
    """One classified mail. ``message_id`` is its own Message-ID (or ``sha256:<hex>`` of the raw
    bytes when it has none or an absurd one): the key for inbound idempotency."""

    kind: Kind
    addresses: tuple[str, ...]  # the failed (or complaining) recipients, lower-cased, sorted
    token: str | None  # the VERP token of the return path, as sent (case kept)
    message_id: str
    status: str | None  # the DSN status code, e.g. "5.1.1"
    detail: str  # a short diagnostic, at most DETAIL_MAX characters


def classify(raw: bytes, return_local: str = "bounces") -> Inbound:
    """Classify one raw mail (see the module docstring); ``return_local`` is the local part the
    VERP addresses start with (``bounces+TOKEN@...``)."""
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise TypeError(f"classify() wants the raw mail as bytes, not {type(raw).__name__}")
    raw = bytes(raw)
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    try:
        return _classify(raw, digest, return_local)
    except Exception as exc:  # noqa: BLE001 - any mail at all must get an answer
        return Inbound(Kind.OTHER, (), None, digest, None, _short(f"unreadable mail: {exc!r}"))


def _classify(raw: bytes, digest: str, return_local: str) -> Inbound:
    msg = email.message_from_bytes(raw)
    message_id = _message_id(msg) or digest
    token = _token(msg, return_local)

    def result(kind: Kind, addresses: Iterable[str] = (), status: str | None = None, detail: str = "") -> Inbound:
        return Inbound(kind, tuple(sorted(set(addresses))), token, message_id, status, _short(detail))

    blocks = _dsn_blocks(msg)
    if blocks:
        bounce = _bounce(msg, blocks)
        if bounce is None:
            actions = sorted({b.get("action", "").strip().lower() for b in blocks} - {""})
            return result(Kind.OTHER, detail="delivery notification: " + (", ".join(actions) or "no action"))
        return result(*bounce)
    if _is_feedback_report(msg):
        return result(Kind.COMPLAINT, *_complaint(msg))
    from_daemon = _local_part(_text(msg.get("From"))).lower() in DAEMONS
    if not from_daemon and _is_auto_reply(msg):
        return result(Kind.AUTO_REPLY, detail=_text(msg.get("Subject")))
    # flufl's heuristics read every line (seconds on megabytes); an old-style bounce says what
    # failed at its top, the rest is the returned original.
    bounce = _bounce(msg if len(raw) <= HEURISTIC_MAX else email.message_from_bytes(raw[:HEURISTIC_MAX]), [])
    if bounce is not None:
        return result(*bounce)
    if _is_auto_reply(msg):
        return result(Kind.AUTO_REPLY, detail=_text(msg.get("Subject")))
    return result(Kind.OTHER, detail=_text(msg.get("Subject")) or "no subject")


def _bounce(msg: Message, blocks: list[Message]) -> tuple[Kind, list[str], str | None, str] | None:
    """(kind, addresses, status, detail) of a bounce, or None when flufl.bounce finds no failure."""
    temporary, permanent = _failures(msg)
    failed = sorted(_decode(a) for a in (permanent or temporary))
    if not failed:
        return None
    kind = Kind.HARD if permanent else Kind.SOFT
    block = _block_for(blocks, failed)
    status, diagnostic = None, ""
    if block is not None:
        diagnostic = _text(block.get("diagnostic-code"))
        diagnostic = diagnostic.split(";", 1)[1].strip() if ";" in diagnostic else diagnostic
        status = _status(_text(block.get("status")), diagnostic)
    if status is not None:
        kind = Kind.SOFT if status.startswith("4") else Kind.HARD if status.startswith("5") else kind
    return kind, failed, status, diagnostic or _text(msg.get("Subject"))


def _failures(msg: Message) -> tuple[frozenset[bytes], frozenset[bytes]]:
    """flufl.bounce's (temporary, permanent) recipients. ``all_failures`` gives up on the whole
    scan when one heuristic detector trips over a mail (Yale's on a mail without From), so the
    detectors run one by one here, in flufl's order, skipping one that fails."""
    detectors = getattr(flufl.bounce._scan, "_DETECTORS", None)
    if detectors is None:  # a flufl.bounce without the list: its own scan
        return all_failures(msg)
    for detector in detectors:
        try:
            temporary, permanent = detector().process(msg)
        except Exception:  # noqa: BLE001, S112 - a heuristic that fails finds nothing
            continue
        if temporary or permanent:
            return frozenset(temporary), frozenset(permanent)
    return frozenset(), frozenset()


def _status(field: str, diagnostic: str) -> str | None:
    """The Status field's code; its class's more precise code from the diagnostic if it is X.0.0."""
    found = ENHANCED.search(field)
    status = ".".join(found.groups()) if found else None
    better = ENHANCED.search(diagnostic)
    if better and (status is None or (status.endswith(".0.0") and better.group(1) == status[0])):
        return ".".join(better.groups())
    return status


def _dsn_blocks(msg: Message) -> list[Message]:
    """The per-recipient field blocks of every message/delivery-status part."""
    blocks: list[Message] = []
    for part in msg.walk():
        if part.get_content_type() == "message/delivery-status" and part.is_multipart():
            blocks.extend(b for b in part.get_payload() if isinstance(b, Message) and b.get("action"))
    return blocks


def _block_for(blocks: list[Message], addresses: list[str]) -> Message | None:
    """The block that names the first failed address, else the first block with a status."""
    for block in blocks:
        for field in ("original-recipient", "final-recipient"):
            if _decode_typed(_text(block.get(field))) in addresses:
                return block
    return next((b for b in blocks if b.get("status")), None)


def _is_feedback_report(msg: Message) -> bool:
    if msg.get_content_type() == "multipart/report" and _text(msg.get_param("report-type")).lower() == "feedback-report":
        return True
    return any(part.get_content_type() == "message/feedback-report" for part in msg.walk())


def _complaint(msg: Message) -> tuple[list[str], None, str]:
    """(addresses, status, detail) of an ARF report."""
    fields = _report_fields(msg)
    addresses = [_decode_typed(v) for v in _all(fields, "Original-Rcpt-To")]
    if not addresses:
        original = _enclosed(msg)
        if original is not None:
            addresses = [a for _, a in email.utils.getaddresses(_all(original, "To"))]
    feedback = _text(fields.get("Feedback-Type")) or "abuse"
    agent = _text(fields.get("User-Agent"))
    return [a.lower() for a in addresses if "@" in a], None, f"feedback-type {feedback}" + (f" from {agent}" if agent else "")


def _report_fields(msg: Message) -> Message:
    for part in msg.walk():
        if part.get_content_type() == "message/feedback-report":
            payload = part.get_payload()
            if isinstance(payload, list) and payload and isinstance(payload[0], Message):
                return payload[0]
            if isinstance(payload, str):
                return HeaderParser().parsestr(payload)
    return Message()


def _enclosed(msg: Message) -> Message | None:
    """The original message (or its headers) returned inside a report."""
    for part in msg.walk():
        kind = part.get_content_type()
        if kind in ("message/rfc822", "message/global") and part.is_multipart():
            inner = part.get_payload(0)
            return inner if isinstance(inner, Message) else None
        if kind in ("text/rfc822-headers", "message/rfc822-headers"):
            payload = part.get_payload(decode=True)
            return HeaderParser().parsestr(payload.decode("utf-8", "replace")) if isinstance(payload, bytes) else None
    return None


def _is_auto_reply(msg: Message) -> bool:
    submitted = _text(msg.get("Auto-Submitted")).strip().lower()
    if submitted and not submitted.startswith("no"):
        return True
    if _text(msg.get("Precedence")).strip().lower() in AUTO_PRECEDENCE:
        return True
    if any(_text(msg.get(h)).strip().lower() not in ("", "no") for h in ("X-Autoreply", "X-Autorespond")):
        return True
    return bool(AUTO_SUBJECT.search(_text(msg.get("Subject"))))


def _token(msg: Message, return_local: str) -> str | None:
    """The VERP token: Delivered-To, X-Original-To, Envelope-To, To in that order, then the
    Return-Path of a returned original message (where an ARF report keeps it)."""
    prefix = return_local.lower() + "+"
    original = _enclosed(msg) if msg.get_content_type() == "multipart/report" else None
    for source, headers in [(msg, TOKEN_HEADERS)] + ([(original, ("Return-Path",))] if original is not None else []):
        for _, address in email.utils.getaddresses(_all(source, *headers)):
            local = _local_part(address)
            if local.lower().startswith(prefix) and len(local) > len(prefix):
                return local[len(prefix):]
    return None


def _message_id(msg: Message) -> str | None:
    value = " ".join(_text(msg.get("Message-ID")).split())
    return value if value and len(value) <= MESSAGE_ID_MAX else None


def _all(msg: Message, *names: str) -> list[str]:
    return [_text(v) for name in names for v in (msg.get_all(name) or [])]


def _text(value: object) -> str:
    """A header value as readable text (RFC 2047 words decoded; never raises)."""
    if value is None:
        return ""
    if isinstance(value, tuple):  # get_param() of an RFC 2231 value
        value = email.utils.collapse_rfc2231_value(value)
    try:
        return str(email.header.make_header(email.header.decode_header(str(value))))
    except Exception:  # noqa: BLE001
        return str(value).encode("utf-8", "replace").decode("utf-8")


def _local_part(address: str) -> str:
    return email.utils.parseaddr(address)[1].rpartition("@")[0]


def _decode(address: bytes | str) -> str:
    return (address.decode("ascii", "replace") if isinstance(address, bytes) else address).strip().lower()


def _decode_typed(value: str) -> str:
    """``rfc822; Someone@Example.org`` -> ``someone@example.org``."""
    value = value.split(";", 1)[1] if ";" in value else value
    return email.utils.parseaddr(value.strip())[1].lower()


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= DETAIL_MAX else text[: DETAIL_MAX - 1] + "…"


# -- reading the bounce mailbox -------------------------------------------------------------------


Handler = Callable[[bytes], Awaitable[object]]


async def read_mailbox(host: str, port: int, username: str, password: str, folder: str = "INBOX",
                       done_folder: str = "Processed", *, handle: Handler, timeout: float = 30.0) -> int:
    """Hand every mail in ``folder`` to ``await handle(raw)``, one at a time; each is moved to
    ``done_folder`` (created when missing) only after its handler returned. Returns the count.

    Delivery is at least once: a crash or a lost connection after ``handle`` returned and before
    the move leaves the mail in ``folder``, and the next run hands it over again, so ``handle``
    must be idempotent (record ``classify(raw).message_id`` before acting). An exception raised
    by ``handle`` stops the run and propagates unchanged; the mails not yet handled stay. IMAP
    trouble of any kind raises ``MailboxError``; ``timeout`` bounds each IMAP command.
    """
    if folder == done_folder:
        raise ValueError(f"the folder read and the folder for handled mail are both {folder!r}")
    account = MailboxAccount(host=host, port=port, username=username, password=password, folder=folder, timeout=timeout)
    async with Mailbox(account) as box:
        await box.ensure_folder(done_folder)
        count = 0
        for uid in await box.uids():
            raw = await box.fetch(uid)
            if raw is None:
                continue  # gone meanwhile (another reader moved it)
            await handle(raw)
            await box.move(uid, done_folder)
            count += 1
        return count
