"""parse_mail, noise_of, subject_ticket_number and normalise_address on well-formed mails built
with EmailMessage and on hand-written broken bytes."""

from __future__ import annotations

from datetime import datetime, timezone
from email.message import EmailMessage

import pytest

from crm_service.content import normalise_address, noise_of, parse_mail, subject_ticket_number

OWN = {"support@crm.test"}
DOMAINS = {"crm.test"}
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def mail(body: str = "Hello, my printer is broken.", **headers: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = headers.pop("From", "Jane Doe <Jane.Doe@Example.COM>")
    msg["To"] = headers.pop("To", "Support <support@crm.test>")
    msg["Subject"] = headers.pop("Subject", "Printer broken")
    msg["Message-ID"] = headers.pop("Message_ID", "<abc.123@example.com>")
    msg["Date"] = headers.pop("Date", "Mon, 01 Jan 2024 10:00:00 +0100")
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    msg.set_content(body)
    return msg


def noise(raw: bytes) -> str | None:
    return noise_of(parse_mail(raw), raw, own_addresses=OWN, own_domains=DOMAINS)


def test_plain_mail() -> None:
    msg = mail(Cc="Bob <BOB@example.com>, bob@example.com, not an address", Reply_To="jane@home.example",
               In_Reply_To="<crm.ticket.1.2.x@crm.test>", References="<a@b> <crm.ticket.1.2.x@crm.test>")
    raw = msg.as_bytes()
    parsed = parse_mail(raw)
    assert parsed.message_id == "<abc.123@example.com>"
    assert parsed.in_reply_to == ["<crm.ticket.1.2.x@crm.test>"]
    assert parsed.references == ["<a@b>", "<crm.ticket.1.2.x@crm.test>"]
    assert (parsed.from_address, parsed.from_name) == ("jane.doe@example.com", "Jane Doe")
    assert parsed.to == ["support@crm.test"] and parsed.cc == ["bob@example.com"]
    assert parsed.reply_to == "jane@home.example"
    assert parsed.subject == "Printer broken"
    assert parsed.date == datetime(2024, 1, 1, 9, 0, tzinfo=timezone.utc)
    assert parsed.text == parsed.reply_text == "Hello, my printer is broken."
    assert parsed.html is None and parsed.attachments == [] and parsed.defects == []
    assert parsed.headers["Content-Type"].startswith("text/plain")
    assert parsed.size == len(raw)
    assert noise(raw) is None


def test_html_only_mail() -> None:
    msg = mail()
    msg.set_content(
        '<html><head><title>Mail</title><style>p {color: red}</style></head>'
        '<body onload="steal()"><p>Hello <b>support</b>,</p><p onclick="x()">the <a href="https://x.example/a">'
        'log</a> and <a href="javascript:alert(1)">this</a>:</p><ul><li>one</li><li>two</li></ul>'
        '<img src="cid:logo@x" onerror="bad()"><script>alert("x")</script></body></html>', subtype="html")
    msg.add_related(PNG, "image", "png", cid="<logo@x>")
    parsed = parse_mail(msg.as_bytes())
    assert parsed.text == "Hello support,\n\nthe log <https://x.example/a> and this:\n\n- one\n- two"
    assert "alert" not in parsed.text and "color" not in parsed.text and "Mail" not in parsed.text
    html = parsed.html or ""
    assert '<img src="cid:logo@x">' in html and 'href="https://x.example/a"' in html
    for gone in ("script", "alert", "style", "onload", "onclick", "onerror", "javascript"):
        assert gone not in html
    [image] = parsed.attachments
    assert (image.content_id, image.inline, image.data, image.filename) == ("logo@x", True, PNG, "attachment-1")


def test_alternative_with_inline_image_and_attachment() -> None:
    msg = mail("Plain version.\n")
    msg.add_alternative('<p>HTML version <img src="cid:pic@x"></p>', subtype="html")
    msg.get_payload()[1].add_related(PNG, "image", "png", cid="<pic@x>", disposition="inline",
                                     filename="pic.png")
    msg.add_attachment(b"%PDF-1.4 report", maintype="application", subtype="pdf", filename="report.pdf")
    parsed = parse_mail(msg.as_bytes())
    assert parsed.text == "Plain version."
    assert parsed.html is not None and "HTML version" in parsed.html and "cid:pic@x" in parsed.html
    pic, pdf = parsed.attachments
    assert (pic.filename, pic.content_type, pic.inline, pic.content_id, pic.size) == \
        ("pic.png", "image/png", True, "pic@x", len(PNG))
    assert (pdf.filename, pdf.content_type, pdf.inline, pdf.content_id, pdf.data) == \
        ("report.pdf", "application/pdf", False, None, b"%PDF-1.4 report")


REPLY = """Thanks, the printer works again after the restart.
It still makes a noise though.

-- 
Jane Doe
ACME Corp, Accounting

On Mon, 1 Jan 2024 at 09:00, Support <support@crm.test> wrote:
> Please restart the printer.
>
> Best regards
> Support
"""


def test_reply_keeps_only_the_new_words() -> None:
    parsed = parse_mail(mail(REPLY).as_bytes())
    assert parsed.reply_text == "Thanks, the printer works again after the restart.\nIt still makes a noise though."
    assert parsed.text == REPLY.strip()


@pytest.mark.parametrize("body", [
    "Ich habe es versucht, leider ohne Erfolg.\n\nMit freundlichen Grüßen\nHans Müller\n\n"
    "Von: Support <support@crm.test>\nGesendet: Montag, 1. Januar 2024 09:00\nAn: Hans Müller <hans@x.de>\n"
    "Betreff: AW: [T-000042] Drucker\n\nBitte starten Sie den Drucker neu.",
    "Ich habe es versucht, leider ohne Erfolg.\n\n"
    "Am 01.01.2024 um 09:00 schrieb Support <support@crm.test>:\n> Bitte starten Sie den Drucker neu.",
    "Ich habe es versucht, leider ohne Erfolg.\n\n________________________________\n"
    "De : Support <support@crm.test>\nEnvoyé : lundi 1 janvier 2024 09:00\nÀ : Jean <jean@x.fr>\n"
    "Objet : RE: Imprimante\n\nRedémarrez l'imprimante.",
    "Ich habe es versucht, leider ohne Erfolg.\n\n"
    "Le lun. 1 janv. 2024 à 09:00, Support <support@crm.test> a écrit :\n> Redémarrez l'imprimante.",
])
def test_german_and_french_quote_headers(body: str) -> None:
    assert parse_mail(mail(body).as_bytes()).reply_text == "Ich habe es versucht, leider ohne Erfolg."


def test_bottom_posting_and_interleaved_answers() -> None:
    body = "On Mon, 1 Jan 2024 at 09:00, Support <support@crm.test> wrote:\n> Did you restart it?\n\nYes, twice."
    assert parse_mail(mail(body).as_bytes()).reply_text == "Yes, twice."
    body = "> Did you restart it?\nYes.\n> And the cable?\nChecked too."
    assert parse_mail(mail(body).as_bytes()).reply_text == "Yes.\nChecked too."
    body = "What I tried:\n- restart\n- new cable\n\nTake care of it please."  # no hyphen lists as signatures
    assert parse_mail(mail(body).as_bytes()).reply_text == body


def test_html_reply_and_flowed_text() -> None:
    msg = mail()
    msg.set_content(
        '<div dir="ltr">It works now, thanks!<br><br>Jane</div><div class="gmail_quote"><div class="gmail_attr">'
        'On Mon, 1 Jan 2024 at 09:00, Support &lt;<a href="mailto:support@crm.test">support@crm.test</a>&gt; '
        'wrote:<br></div><blockquote class="gmail_quote"><div>Please restart it.</div></blockquote></div>',
        subtype="html")
    parsed = parse_mail(msg.as_bytes())
    assert parsed.text.endswith("wrote:\n\n> Please restart it.")
    assert parsed.reply_text == "It works now, thanks!\n\nJane"
    raw = (b"From: a@example.com\r\nContent-Type: text/plain; charset=utf-8; format=flowed\r\n\r\n"
           b"A long line the client \r\nwrapped.\r\n\r\nOn Mon, 1 Jan 2024 at 09:00, Support \r\n"
           b"<support@crm.test> wrote:\r\n> Please restart \r\n> the printer.\r\n")
    parsed = parse_mail(raw)
    assert parsed.text == ("A long line the client wrapped.\n\nOn Mon, 1 Jan 2024 at 09:00, Support "
                           "<support@crm.test> wrote:\n> Please restart the printer.")
    assert parsed.reply_text == "A long line the client wrapped."


def test_only_a_quote_leaves_the_whole_text() -> None:
    body = "> Please restart the printer."
    parsed = parse_mail(mail(body).as_bytes())
    assert parsed.reply_text == parsed.text == body


def test_latin1_bytes_labelled_utf8() -> None:
    raw = (b"From: jean@example.fr\r\nSubject: caf\xe9\r\nContent-Type: text/plain; charset=utf-8\r\n"
           b"\r\nLe caf\xe9 est froid, \x80 10.\r\n")
    parsed = parse_mail(raw)
    assert parsed.text == "Le café est froid, € 10."
    assert parsed.subject == "café"
    assert any("not valid utf-8" in d and "cp1252" in d for d in parsed.defects)


def test_unknown_charset_and_bytes_no_codec_reads() -> None:
    raw = "From: a@example.com\r\nContent-Type: text/plain; charset=x-klingon\r\n\r\nGrüße\r\n".encode()
    parsed = parse_mail(raw)
    assert parsed.text == "Grüße"
    assert any("unknown charset 'x-klingon'" in d for d in parsed.defects)
    raw = b"From: a@example.com\r\nContent-Type: text/plain; charset=base64\r\n\r\nabc \x81\x8d\r\n"
    assert parse_mail(raw).text == "abc \x81\x8d"  # neither utf-8 nor cp1252: latin-1


def test_encoded_word_subjects() -> None:
    raw = (b"From: =?iso-8859-1?q?Ren=E9_Dupont?= <rene@example.fr>\r\n"
           b"Subject: =?iso-8859-1?q?Caf=E9?=\r\n  =?iso-8859-1?q?_cr=E8me?=   au  lait\r\n\r\nx\r\n")
    parsed = parse_mail(raw)
    assert parsed.subject == "Café crème au lait"
    assert parsed.from_name == "René Dupont"
    raw = b"From: a@example.com\r\nSubject: =?x-bogus?Q?Caf=E9?= =?utf-8?B?!!!?=\r\n\r\nx\r\n"
    parsed = parse_mail(raw)
    assert parsed.subject.startswith("Caf")
    raw = b"From: a@example.com\r\nSubject: =?x-bogus?Q?Caf=E9_au_lait?=\r\n\r\nx\r\n"
    parsed = parse_mail(raw)
    assert parsed.subject == "Café au lait"
    assert any("unknown charset 'x-bogus'" in d for d in parsed.defects)


def test_missing_boundary_is_repaired() -> None:
    raw = (b"From: a@example.com\r\nSubject: parts\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n\r\n"
           b"--XyZ\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nThe body.\r\n"
           b"--XyZ\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=a.bin\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\nAAEC\r\n--XyZ--\r\n")
    parsed = parse_mail(raw)
    assert parsed.text == "The body."
    [attachment] = parsed.attachments
    assert (attachment.filename, attachment.data) == ("a.bin", b"\x00\x01\x02")
    assert any("boundary" in d for d in parsed.defects)
    raw = b"From: a@example.com\r\nContent-Type: multipart/mixed\r\n\r\nJust words.\r\n"
    assert parse_mail(raw).text == "Just words."


def test_truncated_base64() -> None:
    raw = (b'From: a@example.com\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
           b"--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\nSGVsbG8gd29ybGQ\r\n"
           b"--b\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename=x.png\r\n"
           b"Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgoAAAANSUhEUgAAAAEAAAAB")
    parsed = parse_mail(raw)
    assert parsed.text == "Hello world"
    [png] = parsed.attachments
    assert png.data is not None and png.data.startswith(b"\x89PNG") and png.size == len(png.data)
    assert parsed.defects


def test_no_from_and_garbage_message_id() -> None:
    raw = b"Subject: anonymous\r\nMessage-ID: garbage here\r\nIn-Reply-To: <>\r\nDate: yesterday\r\n\r\nhi\r\n"
    parsed = parse_mail(raw)
    assert (parsed.from_address, parsed.from_name, parsed.message_id, parsed.date) == (None, None, None, None)
    assert parsed.in_reply_to == [] and parsed.text == "hi"
    assert parse_mail(b"From: not an address\r\n\r\n").from_address is None
    folded = parse_mail(b"Message-ID: < abc.def@\r\n host.example >\r\n\r\n")
    assert folded.message_id == "<abc.def@host.example>"


def test_nothing_raises_on_garbage() -> None:
    for raw in (b"", b"\x00\xff" * 100, b"Content-Type: multipart/mixed; boundary=\r\n\r\n--\r\n--",
                b"Content-Type: message/rfc822\r\n\r\n", b"Subject: =?utf-8?b?====?=\r\n\r\n",
                b"Content-Type: text/plain; charset=\"\xff\"\r\n\r\n\xff"):
        parsed = parse_mail(raw)
        assert parsed.size == len(raw) and "\x00" not in parsed.text
        noise(raw)


def test_big_attachment_dropped_but_mail_parsed() -> None:
    msg = mail("See the attached dump.")
    msg.add_attachment(b"\0" * (12 * 2**20), maintype="application", subtype="octet-stream", filename="dump.bin")
    msg.add_attachment(b"small", maintype="text", subtype="plain", filename="notes.txt")
    parsed = parse_mail(msg.as_bytes())
    assert parsed.text == "See the attached dump."
    dump, notes = parsed.attachments
    assert (dump.data, dump.dropped, dump.size) == (None, "larger than 10 MB", 12 * 2**20)
    assert (notes.data, notes.dropped, notes.content_type) == (b"small", None, "text/plain")


def test_total_attachment_limit() -> None:
    msg = mail()
    for n in range(3):
        msg.add_attachment(bytes(400), maintype="application", subtype="octet-stream", filename=f"{n}.bin")
    parsed = parse_mail(msg.as_bytes(), max_attachment_bytes=500, max_total_attachment_bytes=1000)
    assert [a.data is not None for a in parsed.attachments] == [True, True, False]
    assert parsed.attachments[2].dropped == "attachments over 1000 bytes in total"


def test_rfc2231_filename_with_path_and_forwarded_message() -> None:
    raw = (b'From: a@example.com\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
           b"Content-Type: application/octet-stream\r\n"
           b"Content-Disposition: attachment; filename*=utf-8''..%2F..%2Fetc%2FR%C3%A9sum%C3%A9.pdf\r\n\r\nx\r\n"
           b"--b\r\nContent-Type: application/octet-stream\r\n"
           b'Content-Disposition: attachment; filename="C:\\\\Users\\\\me\\\\=?utf-8?q?Gr=C3=BC=C3=9Fe?=.txt"'
           b"\r\n\r\ny\r\n--b\r\nContent-Type: image/gif\r\n\r\nGIF89a\r\n"
           b"--b\r\nContent-Type: message/rfc822\r\n\r\nFrom: c@example.com\r\nSubject: Old: news\r\n\r\nold\r\n"
           b"--b\r\nContent-Type: message/rfc822\r\n\r\nFrom: c@example.com\r\n\r\nno subject\r\n--b--\r\n")
    names = [a.filename for a in parse_mail(raw).attachments]
    assert names == ["Résumé.pdf", "Grüße.txt", "attachment-3", "Old news.eml", "forwarded.eml"]
    forwarded = parse_mail(raw).attachments[3]
    assert forwarded.content_type == "message/rfc822" and forwarded.data is not None
    assert parse_mail(forwarded.data).subject == "Old: news"


def test_noise_auto_replies() -> None:
    assert noise(mail(Auto_Submitted="auto-replied").as_bytes()) == "AUTO_REPLY"
    assert noise(mail(Auto_Submitted="no").as_bytes()) is None
    assert noise(mail(Precedence="bulk").as_bytes()) == "AUTO_REPLY"
    assert noise(mail(X_Autoreply="yes").as_bytes()) == "AUTO_REPLY"
    vacation = mail(Subject="Automatische Antwort: Printer broken", Return_Path="<jane@example.com>")
    assert noise(vacation.as_bytes()) == "AUTO_REPLY"
    vacation = mail(Subject="Out of Office: back on Monday", Return_Path="<jane@example.com>")
    assert noise(vacation.as_bytes()) == "AUTO_REPLY"
    person = mail(Subject="Out of office hours the printer fails", Return_Path="<jane@example.com>")
    assert noise(person.as_bytes()) is None
    # a responder using the null sender, as RFC 3834 asks, is still an auto-reply
    assert noise(mail(Auto_Submitted="auto-replied", Return_Path="<>").as_bytes()) == "AUTO_REPLY"


DSN = b"""Return-Path: <>
From: MAILER-DAEMON@mx.example.com (Mail Delivery System)
To: support@crm.test
Subject: Undelivered Mail Returned to Sender
Auto-Submitted: auto-replied
Message-ID: <20240101090000.ABC@mx.example.com>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="BND"

--BND
Content-Type: text/plain

I'm sorry to have to inform you that your message could not be delivered.

--BND
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.com

Final-Recipient: rfc822; gone@example.com
Original-Recipient: rfc822;gone@example.com
Action: failed
Status: 5.1.1
Diagnostic-Code: smtp; 550 5.1.1 <gone@example.com>: Recipient address rejected

--BND
Content-Type: message/rfc822

From: Support <support@crm.test>
To: gone@example.com
Subject: Re: [T-000007] Your request
Message-ID: <crm.ticket.7.9.abcdef@crm.test>
X-CRM-Ticket: 7

Hello.
--BND--
""".replace(b"\n", b"\r\n")


def test_noise_bounces() -> None:
    assert noise(DSN) == "BOUNCE"  # of our own mail, and marked auto-replied: still a bounce
    parsed = parse_mail(DSN)
    assert [a.content_type for a in parsed.attachments] == ["message/delivery-status", "message/rfc822"]
    assert noise(mail(From="postmaster@example.com").as_bytes()) == "BOUNCE"
    assert noise(mail(Return_Path="<>").as_bytes()) == "BOUNCE"
    # no report header, no daemon, no Return-Path: flufl.bounce's scan finds the failed recipient
    headless = DSN.replace(b"Return-Path: <>\r\n", b"").replace(b"MAILER-DAEMON@", b"mailer@")
    headless = headless.replace(b"multipart/report; report-type=delivery-status", b"multipart/mixed")
    assert noise(headless) == "BOUNCE"
    # a customer quoting a bounce text has a real envelope sender: not a bounce
    quoted = mail("Your mail to me bounced:\n\nFinal-Recipient: rfc822; gone@example.com\nAction: failed\n"
                  "Status: 5.1.1\n", Return_Path="<jane@example.com>")
    assert noise(quoted.as_bytes()) is None


def test_noise_own_mail() -> None:
    assert noise(mail(From="Support <SUPPORT@crm.test>").as_bytes()) == "OWN"
    assert noise(mail(X_CRM_Ticket="7").as_bytes()) == "OWN"
    assert noise(mail(Message_ID="<crm.ticket.7.9.abcdef@CRM.test>").as_bytes()) == "OWN"
    # a colleague's client in the same domain makes ids of its own: not ours
    assert noise(mail(From="bob@crm.test", Message_ID="<1234.5678@crm.test>").as_bytes()) is None
    assert noise(mail(Message_ID="<crm.ticket.7.9.abcdef@elsewhere.test>").as_bytes()) is None


def test_subject_ticket_number() -> None:
    assert subject_ticket_number("Re: [T-000123] Printer broken") == 123
    assert subject_ticket_number("AW: [t-5] Fwd: [T-000042] again") == 42
    assert subject_ticket_number("About T-123 and the printer") is None
    assert subject_ticket_number("[T-] nothing [T-12a]") is None
    assert subject_ticket_number("") is None


def test_normalise_address() -> None:
    assert normalise_address("  Jane Doe <Jane.Doe@Example.COM> ") == "jane.doe@example.com"
    assert normalise_address("BOB@example.com") == "bob@example.com"
    for garbage in (None, "", "garbage", "a@", "@b", "a@b..c", "<>", "a b@c"):
        assert normalise_address(garbage) is None
