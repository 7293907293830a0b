"""The raw bytes of an incoming support mail, turned into what a ticket needs.

``parse_mail(raw)`` gives a ``ParsedMail``: threading ids, addresses, subject, date, the body as
text (whole, and with the quoted conversation stripped), sanitised HTML and the attachments.
``noise_of`` says whether a mail is one no ticket should be made of. No database, no network,
and nothing raises on malformed input: every step has a fallback, and what was wrong ends up in
``ParsedMail.defects`` for the logs.

* Parsing uses the ``compat32`` policy and decodes headers here: the modern policy's header
  objects raise on some garbage. Raw 8-bit header bytes are read as utf-8, else cp1252; encoded
  words in an unknown or wrong charset go through the same fallbacks as bodies.
* Text parts are decoded by their declared charset; when it is unknown or wrong: utf-8, cp1252,
  then latin-1 (which cannot fail). Without a charset: utf-8, else cp1252. NUL characters are
  dropped (no database text column takes them). ``format=flowed`` is unwrapped, so a quote
  header the sender's client broke over lines is still one line.
* A multipart without a usable boundary is re-parsed with the first ``--boundary`` line of its
  body; without one, its body is read as text.
* ``text`` is the text/plain body; only when there is none (or it is blank) is it made from the
  HTML: blocks become line breaks, list items "- ", links keep their address as ``<url>``, and
  ``<blockquote>`` lines get "> " so that a quote stays recognisable as one.
* ``reply_text``: mailparser_reply with English, German, French, Spanish, Italian and Dutch
  quote headers and signatures (languages with over-eager signature patterns, like a Danish
  "Tak" that also cuts at "Take", are left out, and hyphen lists are not taken for signatures).
  Lines still quoted with ">" (interleaved answers) are dropped after it; a mail that starts
  with the quote header (bottom posting) keeps what follows it minus the quoted lines; when
  nothing is left, the whole ``text``.
* ``noise_of``, first match wins:
  1. OWN: a mail we sent must never become a comment. Only top-level headers count, so the
     bounce of one of our mails (our headers only inside the report) is not OWN.
  2. BOUNCE by strong signs: a delivery-status report, mailer-daemon or postmaster as sender,
     and, when the mail has no Return-Path at all, flufl.bounce finding failed recipients. These
     come before the auto-reply headers because MTAs mark DSNs ``Auto-Submitted: auto-replied``.
     flufl's heuristics are skipped for mail with a real envelope sender: bounces never have one
     (RFC 5321 4.5.5), and a customer pasting a bounce text into a mail must not be lost.
  3. AUTO_REPLY by headers (RFC 3834 Auto-Submitted, Precedence, X-Autoreply/X-Autorespond).
  4. BOUNCE by an empty Return-Path alone: after 3, as RFC 3834 asks responders to use the null
     sender too.
  5. AUTO_REPLY by a vacation subject: only at the start, followed by ":" or nothing.
  Our Message-IDs count only with the ``crm.`` prefix and a domain of ``own_domains``: the mail
  server of that domain, and colleagues writing from it, make ids in that domain too.
"""

from __future__ import annotations

import codecs
import email.header
import email.utils
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32
from html.parser import HTMLParser

import nh3
from flufl.bounce import scan_message
from mailparser_reply.parser import EmailMessage

NOISE_HEADERS = ("Auto-Submitted", "Precedence", "X-Autoreply", "X-Autorespond", "List-Id",
                 "List-Unsubscribe", "Return-Path", "Content-Type", "X-CRM-Ticket")
REPLY_LANGUAGES = ("en", "de", "fr", "es", "it", "nl")
REPLY_SCAN_MAX = 100_000  # characters of text the quote stripping reads
HEURISTIC_MAX = 128 * 1024  # bytes of a mail flufl.bounce's heuristics read (they read every line)
MAX_DEPTH = 30  # MIME nesting followed
MESSAGE_ID_MAX = 255
OWN_ID_PREFIX = "crm."
AUTO_PRECEDENCE = {"bulk", "junk", "list", "auto_reply"}
DAEMONS = {"mailer-daemon", "postmaster"}
AUTO_SUBJECT = re.compile(
    r"\s*(?:auto(?:matic)?[ -]?reply|out of (?:the )?office(?: auto ?reply)?|automatische antwort|"
    r"abwesenheitsnotiz|r[ée]ponse automatique|respuesta autom[áa]tica|risposta automatica|"
    r"automatisch antwoord)\s*(?::|$)", re.IGNORECASE)
TICKET_TAG = re.compile(r"\[T-(\d{1,18})\]", re.IGNORECASE)
ADDRESS = re.compile(r"[^@\s<>()\[\],;:\"\\]+@[^@\s<>()\[\],;:\"\\]+")
MSG_ID = re.compile(r"[^<>@\s]+@[^<>@\s]+")
BOUNDARY_LINE = re.compile(r"^--([0-9A-Za-z'()+_,\-./:=?]{1,70})[ \t]*\r?$", re.MULTILINE)
_CLEANER = nh3.Cleaner(url_schemes={"http", "https", "mailto", "cid"}, url_relative="deny",
                       clean_content_tags={"script", "style", "title"})


@dataclass(frozen=True)
class MailAttachment:
    filename: str  # decoded, path parts stripped; "attachment-N" when none
    content_type: str  # lowercased, "image/png"
    size: int  # decoded bytes
    content_id: str | None  # without <>
    inline: bool  # has a Content-ID and is not a declared attachment: an image the HTML shows
    data: bytes | None  # None when over a limit
    dropped: str | None  # why data is None


@dataclass(frozen=True)
class ParsedMail:
    message_id: str | None
    in_reply_to: list[str]
    references: list[str]
    from_address: str | None
    from_name: str | None
    to: list[str]
    cc: list[str]
    reply_to: str | None
    subject: str
    date: datetime | None
    text: str
    reply_text: str
    html: str | None
    attachments: list[MailAttachment]
    headers: dict[str, str]
    defects: list[str]
    size: int


def normalise_address(value: str | None) -> str | None:
    """``Name <Addr@Host>`` -> ``addr@host``; None without one parsable address."""
    if not isinstance(value, str):
        return None
    try:
        address = email.utils.parseaddr(value)[1].strip().lower()
    except Exception:
        return None
    if not ADDRESS.fullmatch(address):
        return None
    domain = address.rsplit("@", 1)[1]
    return None if domain.startswith(".") or domain.endswith(".") or ".." in domain else address


def subject_ticket_number(subject: str) -> int | None:
    """The number of the last ``[T-<digits>]`` tag of a subject, else None."""
    found = TICKET_TAG.findall(subject) if isinstance(subject, str) else []
    return int(found[-1]) if found else None


def parse_mail(raw: bytes, *, max_attachment_bytes: int = 10 * 2**20,
               max_total_attachment_bytes: int = 25 * 2**20) -> ParsedMail:
    """Everything a ticket needs from one mail; never raises."""
    raw = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else bytes(raw)
    try:
        return _parse(raw, _Body(max_attachment_bytes, max_total_attachment_bytes))
    except Exception as exc:  # the last line of defence: the bytes as text
        text = _decode(raw, None, [], "mail").strip()
        return ParsedMail(None, [], [], None, None, [], [], None, "", None, text, text, None, [], {},
                          [f"unparsable: {type(exc).__name__}: {exc}"], len(raw))


def noise_of(mail: ParsedMail, raw: bytes, *, own_addresses: Collection[str],
             own_domains: Collection[str]) -> str | None:
    """"OWN", "BOUNCE", "AUTO_REPLY", or None for a mail a person wrote (order: module docstring)."""
    headers = {name.lower(): value for name, value in mail.headers.items()}
    own = {normalise_address(a) for a in own_addresses} - {None}
    local, _, domain = (mail.message_id or "").strip("<>").rpartition("@")
    if (mail.from_address is not None and mail.from_address in own) or "x-crm-ticket" in headers \
            or (local.startswith(OWN_ID_PREFIX) and domain.lower() in {d.strip().lstrip("@").lower()
                                                                       for d in own_domains}):
        return "OWN"
    ctype = headers.get("content-type", "")
    if re.match(r"\s*multipart/report\b", ctype, re.I) and re.search(r"report-type\s*=\s*\"?delivery-status",
                                                                      ctype, re.I):
        return "BOUNCE"
    if mail.from_address and mail.from_address.split("@")[0] in DAEMONS:
        return "BOUNCE"
    return_path = headers.get("return-path")
    if return_path is None and _failed_recipients(raw):
        return "BOUNCE"
    submitted = headers.get("auto-submitted", "").split(";")[0].strip().lower()
    if (submitted and submitted != "no") or "x-autoreply" in headers or "x-autorespond" in headers \
            or headers.get("precedence", "").strip().lower() in AUTO_PRECEDENCE:
        return "AUTO_REPLY"
    if return_path is not None and re.fullmatch(r"\s*(?:<\s*>)?\s*", return_path):
        return "BOUNCE"
    return "AUTO_REPLY" if AUTO_SUBJECT.match(mail.subject) else None


def _failed_recipients(raw: bytes) -> bool:
    try:
        return bool(scan_message(BytesParser(policy=compat32).parsebytes(raw[:HEURISTIC_MAX])))
    except Exception:
        return False


class _Body:
    """What the walk over the MIME parts collects."""

    def __init__(self, max_one: int, max_total: int) -> None:
        self.max_one, self.max_total, self.kept = max_one, max_total, 0
        self.texts: list[str] = []
        self.htmls: list[str] = []
        self.attachments: list[MailAttachment] = []
        self.defects: list[str] = []
        self.parts: list[Message] = []

    def attach(self, filename: str | None, ctype: str, data: bytes, cid: str | None, inline: bool) -> None:
        size, dropped = len(data), None
        if size > self.max_one:
            dropped = f"larger than {_amount(self.max_one)}"
        elif self.kept + size > self.max_total:
            dropped = f"attachments over {_amount(self.max_total)} in total"
        else:
            self.kept += size
        self.attachments.append(MailAttachment(filename or f"attachment-{len(self.attachments) + 1}",
                                               ctype, size, cid, inline, None if dropped else data, dropped))


def _parse(raw: bytes, body: _Body) -> ParsedMail:
    msg = BytesParser(policy=compat32).parsebytes(raw)
    defects = body.defects
    _walk(msg, body, 0)
    for part in body.parts:  # after the walk: decoding payloads adds defects too
        defects.extend(type(d).__name__ for d in getattr(part, "defects", ()))
    senders = _addresses(msg, "From", defects)
    text = "\n\n".join(t for t in (s.strip() for s in body.texts) if t)
    if not text and body.htmls:
        text = _html_text("\n".join(body.htmls))
    reply_to = _addresses(msg, "Reply-To", defects)
    return ParsedMail(
        message_id=next(iter(_message_ids(_first(msg, "Message-ID", defects))), None),
        in_reply_to=_message_ids(_first(msg, "In-Reply-To", defects)),
        references=_message_ids(" ".join(_raw_headers(msg, "References", defects))),
        from_address=senders[0][1] if senders else None, from_name=senders[0][0] if senders else None,
        to=_unique(a for _, a in _addresses(msg, "To", defects)),
        cc=_unique(a for _, a in _addresses(msg, "Cc", defects)),
        reply_to=reply_to[0][1] if reply_to else None,
        subject=" ".join(_words(_first(msg, "Subject", defects), defects, "Subject").split()),
        date=_date(_first(msg, "Date", defects)),
        text=text, reply_text=_reply_text(text, defects),
        html=_CLEANER.clean("\n".join(body.htmls)) if body.htmls else None,
        attachments=body.attachments, size=len(raw), defects=_unique(defects)[:50],
        headers={name: " ".join(values[0].split()) for name in NOISE_HEADERS
                 if (values := _raw_headers(msg, name, defects))})


def _walk(part: Message, body: _Body, depth: int) -> None:
    body.parts.append(part)
    if depth > MAX_DEPTH:
        body.defects.append(f"MIME parts nested deeper than {MAX_DEPTH} ignored")
        return
    ctype = part.get_content_type()
    maintype = ctype.split("/")[0]
    if part.is_multipart():
        if maintype == "message":  # a forwarded mail, a delivery-status block
            _attach_message(part, ctype, body)
        else:
            for sub in part.get_payload():
                if isinstance(sub, Message):
                    _walk(sub, body, depth + 1)
        return
    data = _payload(part)
    if maintype == "multipart":  # the parser found no boundary
        repaired = _repair_boundary(part, data)
        body.defects.append("multipart without its boundary: " + ("re-parsed" if repaired else "read as text"))
        if repaired is not None:
            _walk(repaired, body, depth + 1)
        else:
            body.texts.append(_decode(data, part.get_content_charset(), body.defects, ctype))
        return
    disposition = part.get_content_disposition()
    filename = _filename(part, body.defects)
    if ctype in ("text/plain", "text/html") and disposition != "attachment" and filename is None:
        text = _decode(data, part.get_content_charset(), body.defects, ctype)
        if ctype == "text/html":
            body.htmls.append(text)
        elif str(part.get_param("format", "")).lower() == "flowed":
            body.texts.append(_unflow(text, str(part.get_param("delsp", "")).lower() == "yes"))
        else:
            body.texts.append(text)
        return
    if maintype == "message":  # message/rfc822 not parsed as one (a base64 one, say)
        filename = filename or "forwarded.eml"
    cid = _first(part, "Content-ID", body.defects).strip().strip("<>").strip() or None
    body.attach(filename, ctype, data, cid, cid is not None and disposition != "attachment")


def _attach_message(part: Message, ctype: str, body: _Body) -> None:
    try:
        whole = part.as_bytes()
    except Exception:
        whole = part.as_string().encode("utf-8", "surrogateescape")
    split = re.split(rb"\r?\n\r?\n", whole, maxsplit=1)  # the part's own headers off
    filename = _filename(part, body.defects)
    inner = part.get_payload()[0] if part.get_payload() else None
    if filename is None and ctype == "message/rfc822" and isinstance(inner, Message):
        subject = _words(_first(inner, "Subject", body.defects), body.defects, "Subject")
        subject = " ".join(re.sub(r"[\\/:*?\"<>|\x00-\x1f]", " ", subject).split())[:100]
        filename = f"{subject}.eml" if subject else "forwarded.eml"
    body.attach(filename, ctype, split[1] if len(split) > 1 else b"", None, False)


def _payload(part: Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
        return data if isinstance(data, bytes) else b""
    except Exception:
        value = part.get_payload()
        return value.encode("ascii", "surrogateescape") if isinstance(value, str) else b""


def _repair_boundary(part: Message, data: bytes) -> Message | None:
    text = data.decode("ascii", "surrogateescape")
    found = next((m for m in BOUNDARY_LINE.finditer(text) if m.group(1).strip("-")), None)
    if found is None:
        return None
    head = f'Content-Type: {part.get_content_type()}; boundary="{found.group(1)}"\r\n\r\n'.encode()
    repaired = BytesParser(policy=compat32).parsebytes(head + data)
    return repaired if repaired.is_multipart() else None


def _filename(part: Message, defects: list[str]) -> str | None:
    try:
        name = part.get_filename()
    except Exception:
        name = None
    if not isinstance(name, str):
        return None
    name = _words(_recover(name, defects), defects, "filename")  # clients put encoded words there too
    name = re.sub(r"[\x00-\x1f\x7f]", "", name.replace("\\", "/").rsplit("/", 1)[-1]).strip()
    return None if name in ("", ".", "..") else name[-255:]


def _decode(data: bytes, charset: str | None, defects: list[str], where: str) -> str:
    """Bytes as text by the declared charset, else utf-8, cp1252, latin-1; NULs dropped, LF lines."""
    problem = None
    if charset:
        try:
            codecs.lookup(charset)
            return data.decode(charset).replace("\x00", "").replace("\r\n", "\n")
        except LookupError:
            problem = f"unknown charset {charset!r}"
        except Exception:  # UnicodeDecodeError, or a codec that is not a text encoding
            problem = f"not valid {charset}"
    for fallback in ("utf-8", "cp1252", "latin-1"):
        try:
            text = data.decode(fallback)
            break
        except UnicodeDecodeError:
            continue
    if problem:
        defects.append(f"{where}: {problem}, read as {fallback}")
    return text.replace("\x00", "").replace("\r\n", "\n")


def _recover(value: str, defects: list[str]) -> str:
    """A header with raw 8-bit bytes (surrogates from the parser) as text."""
    if not re.search("[\udc80-\udcff]", value):
        return value
    return _decode(value.encode("ascii", "surrogateescape"), None, defects, "header")


def _raw_headers(msg: Message, name: str, defects: list[str]) -> list[str]:
    """Every value of a header, unfolded."""
    return [_recover(re.sub(r"[\r\n]+", "", str(v)), defects) for k, v in msg.raw_items()
            if k.lower() == name.lower()]


def _first(msg: Message, name: str, defects: list[str]) -> str:
    values = _raw_headers(msg, name, defects)
    return values[0] if values else ""


def _words(value: str, defects: list[str], where: str) -> str:
    """RFC 2047 encoded words decoded, whatever their charset claims."""
    try:
        chunks = email.header.decode_header(value)
    except Exception:
        defects.append(f"{where}: broken encoded word kept as is")
        return value
    out = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            out.append(chunk)
        elif charset in (None, "unknown-8bit"):  # the text between encoded words
            try:
                out.append(chunk.decode("raw-unicode-escape"))
            except Exception:
                out.append(chunk.decode("latin-1"))
        else:
            out.append(_decode(chunk, charset, defects, where))
    return "".join(out).replace("\x00", "")


def _addresses(msg: Message, name: str, defects: list[str]) -> list[tuple[str | None, str]]:
    """(display name, normalised address) of every parsable address in the headers ``name``."""
    try:
        pairs = email.utils.getaddresses(_raw_headers(msg, name, defects))
    except Exception:
        return []
    return [(" ".join(_words(display, defects, name).split()) or None, normal)
            for display, address in pairs if (normal := normalise_address(address)) is not None]


def _message_ids(value: str) -> list[str]:
    """``<id@host>`` ids of a header, whitespace inside removed; garbage left out."""
    candidates = re.findall(r"<([^<>]*)>", value) or re.split(r"[\s,]+", value)
    ids = ("".join(c.split()) for c in candidates)
    return _unique(f"<{i}>" for i in ids if MSG_ID.fullmatch(i) and len(i) + 2 <= MESSAGE_ID_MAX)


def _date(value: str) -> datetime | None:
    try:
        parsed = email.utils.parsedate_to_datetime(value)
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    except Exception:
        return None


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _amount(limit: int) -> str:
    return f"{limit / 2**20:.3g} MB" if limit >= 2**20 else f"{limit} bytes"


def _unflow(text: str, delsp: bool) -> str:
    """RFC 3676: a line ending in a space goes on in the next one of the same quote depth."""
    out: list[tuple[int, str]] = []
    soft = False
    for line in text.split("\n"):
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth + 1:] if line[depth:depth + 1] == " " else line[depth:]  # space-stuffing
        if soft and out[-1][0] == depth:
            out[-1] = (depth, out[-1][1] + content)
        else:
            out.append((depth, content))
        soft = content.endswith(" ") and content != "-- "
        if soft and delsp:
            out[-1] = (depth, out[-1][1][:-1])
    return "\n".join((">" * d + " " if d else "") + c for d, c in out)


def _reply_text(text: str, defects: list[str]) -> str:
    """``text`` without the quoted conversation and the signature; ``text`` when nothing is left."""
    if not text:
        return text
    try:
        parsed = EmailMessage(text=text[:REPLY_SCAN_MAX], languages=list(REPLY_LANGUAGES),
                              keep_hyphen_lists=True).read()
        first = parsed.replies[0]
    except Exception as exc:
        defects.append(f"quote stripping failed: {type(exc).__name__}")
        return text
    if len(text) > REPLY_SCAN_MAX and len(parsed.replies) == 1 and not first.signatures:
        return text  # nothing found to strip in what was read of a very long text
    # the mail starts with the quote header (bottom posting): the answer follows the quoted lines
    new = parsed.text.split(first.headers, 1)[-1] if first.headers else first.body
    new = "\n".join(line for line in new.split("\n") if not line.startswith(">"))
    return re.sub(r"\n{3,}", "\n\n", new).strip() or text


_BLOCK = {"p", "div", "tr", "li", "ul", "ol", "table", "blockquote", "pre", "hr", "h1", "h2",
          "h3", "h4", "h5", "h6", "section", "article", "header", "footer", "dd", "dt", "dl"}
_PARAGRAPH = {"p", "ul", "ol", "table", "blockquote", "pre", "h1", "h2", "h3", "h4", "h5", "h6"}
_SKIP = {"script", "style", "title", "template"}


class _HtmlText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.buf: list[str] = []
        self.quote = self.skip = self.pre = 0
        self.link: tuple[str, int] | None = None

    def flush(self, paragraph: bool = False) -> None:
        line, self.buf = "".join(self.buf), []
        for part in line.split("\n") if self.pre else [" ".join(line.split())]:
            if part.strip() or self.pre:
                self.lines.append("> " * self.quote + part.rstrip())
        if paragraph:
            self.lines.append("")

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skip += 1
            return
        if tag in _BLOCK:
            self.flush(tag in _PARAGRAPH)
        if tag == "br" and not "".join(self.buf).strip():  # a second <br> in a row: a blank line
            self.lines.append("")
        elif tag == "br":
            self.flush()
        elif tag == "blockquote":
            self.quote += 1
        elif tag == "pre":
            self.pre += 1
        elif tag == "li":
            self.buf.append("- ")
        elif tag == "a":
            href = dict(attrs).get("href") or ""
            self.link = (href, len(self.buf)) if re.match(r"(https?|mailto):", href, re.I) else None

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
            return
        if tag == "a" and self.link is not None:
            href, start = self.link
            label = "".join(self.buf[start:]).strip()
            if label and label not in (href, href.removeprefix("mailto:")):
                self.buf.append(f" <{href}>")
            self.link = None
        if tag in _BLOCK:
            self.flush(tag in _PARAGRAPH)
        if tag == "blockquote":
            self.quote = max(0, self.quote - 1)
        elif tag == "pre":
            self.pre = max(0, self.pre - 1)

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.buf.append(data)


def _html_text(html: str) -> str:
    parser = _HtmlText()
    try:
        parser.feed(html)
        parser.close()
    except Exception:
        pass
    parser.flush()
    return re.sub(r"\n{3,}", "\n\n", "\n".join(parser.lines)).strip()
