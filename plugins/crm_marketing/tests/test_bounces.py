"""What comes back to the bounce address: real DSNs from exim (a hard one from a recipient the
receiving server refuses with 550 5.1.1, a soft one, exim's delay warning, from one it answers
451 4.2.0), ARF complaints and auto-replies written here the way ISPs and mail clients send them
(nothing on this machine produces them), garbage; and the bounce mailbox read from a real
dovecot, each mail moved away only once it was handled.
"""

from __future__ import annotations

import imaplib
import random
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from email.mime.message import MIMEMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import make_msgid

import aiosmtplib
import pytest
from crm_graph.testing.mailservers import DovecotServer, EximServer, SmtpSink, free_port  # noqa: F401

from crm_marketing.bounces import Inbound, Kind, MailboxError, classify, read_mailbox

pytestmark = pytest.mark.one_pass


@pytest.fixture
def mta(exim: EximServer) -> Iterator[EximServer]:
    """The session's exim, its sinks and queue emptied after the test."""
    yield exim
    exim.reset()


def newsletter(to: str, subject: str = "Spring offer") -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = "Newsletter <news@crm.test>"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = make_msgid(domain="crm.test")
    msg.set_content("Twenty per cent off this week.\n")
    return msg


async def send_and_catch(mta: EximServer, token: str, *recipients: str) -> bytes:
    """Send a newsletter through exim with the VERP return path; the DSN the catcher got."""
    await aiosmtplib.send(newsletter(", ".join(recipients)), hostname=mta.host, port=mta.port,
                          sender=mta.return_path(token), recipients=list(recipients))
    caught = await mta.catcher.wait_for_match(lambda m: m.rcpt_tos == (mta.return_path(token),), timeout=20)
    return caught.raw


async def test_a_refused_recipient_comes_back_from_exim_as_a_hard_bounce_with_its_token(mta: EximServer) -> None:
    mta.reject("gone@example.net")
    raw = await send_and_catch(mta, "c17-r4711", "Gone@example.net", "reader@example.net")

    inbound = classify(raw)
    assert inbound.kind is Kind.HARD
    assert inbound.addresses == ("gone@example.net",)
    assert inbound.token == "c17-r4711"
    assert inbound.status == "5.1.1"  # exim writes 5.0.0; the receiving server said 5.1.1
    assert "User unknown" in inbound.detail
    assert inbound.message_id.startswith("<E") and inbound.message_id.endswith("@mta.crm.test>")
    # the other recipient got the newsletter and is not in the bounce
    assert [m.rcpt_tos for m in mta.receiver.messages] == [("reader@example.net",)]


async def test_a_mailbox_busy_for_a_while_gives_a_soft_bounce_not_a_hard_one(mta: EximServer) -> None:
    mta.defer("busy@example.net")
    raw = await send_and_catch(mta, "c17-r4712", "busy@example.net")

    inbound = classify(raw)
    assert inbound.kind is Kind.SOFT
    assert inbound.addresses == ("busy@example.net",)
    assert inbound.token == "c17-r4712"
    assert inbound.status == "4.2.0"
    assert "Mailbox busy" in inbound.detail
    assert "busy@example.net" in mta.queue()
    mta.reset()  # exim would go on retrying: the mail leaves its queue
    assert mta.queue().strip() == ""


def test_an_old_style_bounce_from_a_mailer_daemon_is_found_even_when_marked_automatic() -> None:
    qmail = (b"From: MAILER-DAEMON@mx.example.org\r\nTo: bounces+c17-r6@bounces.crm.test\r\nSubject: failure notice\r\n"
             b"Auto-Submitted: auto-replied\r\nMessage-ID: <q1@mx.example.org>\r\n\r\n"
             b"Hi. This is the qmail-send program at mx.example.org.\r\n"
             b"I'm afraid I wasn't able to deliver your message to the following addresses.\r\n"
             b"This is a permanent error; I've given up. Sorry it didn't work out.\r\n\r\n"
             b"<Old@Example.org>:\r\nSorry, no mailbox here by that name. (#5.1.1)\r\n\r\n"
             b"--- Below this line is a copy of the message.\r\n\r\nSubject: Spring offer\r\n\r\nhi\r\n")
    assert classify(qmail) == Inbound(Kind.HARD, ("old@example.org",), "c17-r6", "<q1@mx.example.org>", None,
                                      "failure notice")


def feedback_report(original_rcpt: str | None) -> bytes:
    """An ARF report (RFC 5965) as a mailbox provider's feedback loop sends it."""
    original = newsletter("Reader@Example.org")
    original["Return-Path"] = "<bounces+c17-r99@bounces.crm.test>"
    report = MIMEMultipart("report", report_type="feedback-report")
    report["From"] = "Feedback Loop <fbl@isp.example>"
    report["To"] = "abuse@crm.test"
    report["Subject"] = "Abuse report"
    report["Message-ID"] = "<fbl-1@isp.example>"
    report.attach(MIMEText("This is an email abuse report for a message received from you.\n"))
    fields = "Feedback-Type: abuse\nUser-Agent: ExampleFBL/1.0\nVersion: 1\n"
    if original_rcpt:
        fields += f"Original-Rcpt-To: <{original_rcpt}>\n"
    part = MIMEText(fields)
    part.replace_header("Content-Type", "message/feedback-report")
    report.attach(part)
    report.attach(MIMEMessage(original))
    return report.as_bytes()


@pytest.mark.parametrize("original_rcpt", ["Reader@Example.org", None], ids=["original-rcpt-to", "original-to"])
def test_a_feedback_report_is_a_complaint_from_the_reader(original_rcpt: str | None) -> None:
    inbound = classify(feedback_report(original_rcpt))
    assert inbound == Inbound(Kind.COMPLAINT, ("reader@example.org",), "c17-r99", "<fbl-1@isp.example>", None,
                              "feedback-type abuse from ExampleFBL/1.0")


@pytest.mark.parametrize("header", [("Auto-Submitted", "auto-replied"), ("Precedence", "auto_reply"),
                                    ("X-Autoreply", "yes"), ("Subject", "Out of Office: Spring offer")])
def test_an_automatic_reply_is_never_a_bounce(header: tuple[str, str]) -> None:
    reply = EmailMessage()
    reply["From"] = "Reader <reader@example.org>"
    reply["To"] = "bounces+c17-r5@bounces.crm.test"
    reply["Subject"] = header[1] if header[0] == "Subject" else "Re: Spring offer"
    if header[0] != "Subject":
        reply[header[0]] = header[1]
    reply.set_content("I am away until Monday and cannot deliver your message to the team: it failed to reach me.\n")

    inbound = classify(reply.as_bytes())
    assert (inbound.kind, inbound.addresses, inbound.token) == (Kind.AUTO_REPLY, (), "c17-r5")
    assert inbound.message_id.startswith("sha256:")  # no Message-ID: the bytes' hash


@pytest.mark.parametrize("raw", [b"", b"\x00\xff\xfe not a mail at all \r\n\r\n\x80",
                                 b"Content-Type: multipart/report; report-type=delivery-status\r\n\r\nno parts",
                                 random.Random(3464).randbytes(2 * 1024 * 1024)],
                         ids=["empty", "binary", "broken-report", "2-MB-blob"])
def test_garbage_is_other_and_never_raises(raw: bytes) -> None:
    inbound = classify(raw)
    assert (inbound.kind, inbound.addresses, inbound.status) == (Kind.OTHER, (), None)
    assert inbound.message_id.startswith("sha256:") and len(inbound.detail) <= 500


def test_the_token_comes_from_the_delivery_headers_first_and_the_prefix_is_configurable() -> None:
    raw = (b"Delivered-To: returns+first@bounces.crm.test\r\nX-Original-To: returns+second@bounces.crm.test\r\n"
           b"To: returns+third@bounces.crm.test\r\nSubject: hello\r\n\r\nhi\r\n")
    assert classify(raw, return_local="returns").token == "first"
    assert classify(raw).token is None  # not a bounces+ address


# -- reading the bounce mailbox -----------------------------------------------------------------


def mails(n: int) -> list[bytes]:
    return [f"From: mailer-daemon@isp.example\r\nTo: bounces+t{i}@bounces.crm.test\r\nSubject: n{i}\r\n"
            f"Message-ID: <m{i}@isp.example>\r\n\r\nbody {i}\r\n".encode() for i in range(1, n + 1)]


async def test_every_mail_is_handled_then_moved_to_processed(dovecot: DovecotServer) -> None:
    user, password = dovecot.new_user()
    sent = mails(3)
    for raw in sent:
        dovecot.append(user, raw)
    seen: list[bytes] = []

    async def handle(raw: bytes) -> None:
        seen.append(raw)

    assert await read_mailbox(dovecot.host, dovecot.port, user, password, handle=handle) == 3
    assert seen == sent
    assert dovecot.list_uids(user, "INBOX") == []
    assert dovecot.messages(user, "Processed") == sent
    assert await read_mailbox(dovecot.host, dovecot.port, user, password, handle=handle) == 0


async def test_the_done_folder_may_have_any_name(dovecot: DovecotServer) -> None:
    user, password = dovecot.new_user()
    dovecot.append(user, mails(1)[0])

    async def handle(raw: bytes) -> None:
        pass

    assert await read_mailbox(dovecot.host, dovecot.port, user, password, done_folder='Erledigt – "Bounces"',
                              handle=handle) == 1
    assert len(dovecot.list_uids(user, 'Erledigt &IBM- "Bounces"')) == 1  # IMAP's modified UTF-7


WITHOUT_MOVE = {"copy-uid-expunge": "IMAP4rev1 LITERAL+ IDLE UIDPLUS", "copy-expunge": "IMAP4rev1 LITERAL+"}


@pytest.fixture(scope="session")
def servers_without_move() -> Iterator[dict[str, DovecotServer]]:
    """dovecots that do not offer MOVE (with and without UIDPLUS), stopped side by side."""
    servers = {name: DovecotServer(imap_capability=capability) for name, capability in WITHOUT_MOVE.items()}
    try:
        for server in servers.values():
            server.start()
        yield servers
    finally:
        with ThreadPoolExecutor() as pool:
            list(pool.map(DovecotServer.stop, servers.values()))


@pytest.mark.parametrize("imap", ["move", *WITHOUT_MOVE])
async def test_a_handler_that_fails_leaves_the_rest_for_the_next_run_and_none_is_handled_twice(
        imap: str, dovecot: DovecotServer, servers_without_move: dict[str, DovecotServer]) -> None:
    server = dovecot if imap == "move" else servers_without_move[imap]
    user, password = server.new_user()
    with imaplib.IMAP4(server.host, server.port) as client:
        client.login(user, password)
        assert (b"MOVE" in client.capability()[1][0].split()) == (imap == "move")
    for raw in mails(3):
        server.append(user, raw)
    handled: list[str] = []

    async def fails_on_the_second(raw: bytes) -> None:
        if len(handled) == 1:
            raise ConnectionError("the database went away")  # an OSError: still the handler's, not IMAP's
        handled.append(classify(raw).message_id)

    with pytest.raises(ConnectionError, match="went away"):
        await read_mailbox(server.host, server.port, user, password, handle=fails_on_the_second)
    assert handled == ["<m1@isp.example>"]
    assert len(server.list_uids(user, "INBOX")) == 2 and len(server.list_uids(user, "Processed")) == 1

    async def handle(raw: bytes) -> None:
        handled.append(classify(raw).message_id)

    assert await read_mailbox(server.host, server.port, user, password, handle=handle) == 2
    assert handled == ["<m1@isp.example>", "<m2@isp.example>", "<m3@isp.example>"]
    assert server.list_uids(user, "INBOX") == [] and len(server.list_uids(user, "Processed")) == 3


async def test_mailbox_problems_are_a_mailbox_error(dovecot: DovecotServer) -> None:
    user, password = dovecot.new_user()

    async def handle(raw: bytes) -> None:
        raise AssertionError("nothing to handle")

    for host, port, pw, folder, said in [(dovecot.host, dovecot.port, "wrong", "INBOX", "login refused"),
                                         (dovecot.host, free_port(), password, "INBOX", "cannot connect"),
                                         (dovecot.host, dovecot.port, password, "Nope", "cannot open folder 'Nope'")]:
        with pytest.raises(MailboxError, match=said):
            await read_mailbox(host, port, user, pw, folder, handle=handle)


async def test_the_sink_can_drop_a_connection_after_data_without_answering(smtp_sink: SmtpSink) -> None:
    smtp_sink.drop_after_data(1)
    with pytest.raises(aiosmtplib.SMTPServerDisconnected):
        await aiosmtplib.send(newsletter("a@example.net"), hostname=smtp_sink.host, port=smtp_sink.port, timeout=10)
    await aiosmtplib.send(newsletter("b@example.net"), hostname=smtp_sink.host, port=smtp_sink.port, timeout=10)
    assert [m.rcpt_tos for m in smtp_sink.dropped] == [("a@example.net",)]
    assert [m.rcpt_tos for m in await smtp_sink.wait_for(1)] == [("b@example.net",)]
