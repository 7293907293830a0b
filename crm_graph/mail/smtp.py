"""The built-in mail transport: SMTP on aiosmtplib (``CRM_SMTP_*``: host, port, username,
password, TLS none / starttls / tls, timeout).

A session keeps one connection open and reconnects when the server dropped it. Each message is
sent as MAIL, RCPT, DATA one step at a time, so a failure says whether the server may have the
message: anything before DATA, or a DATA the server answered with an error, is certainly not
delivered (retry it); a connection lost or timed out during DATA may be (``accepted_maybe``: the
sender never sends that message again).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aiosmtplib

from crm_graph.core.mail import MailError, OutgoingMail

_LOST = (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPConnectError, aiosmtplib.SMTPTimeoutError,
         ConnectionError, TimeoutError, asyncio.TimeoutError, OSError)


class SmtpTransport:
    name = "smtp"
    description = "SMTP (aiosmtplib): a relay or smart host, with STARTTLS or implicit TLS and AUTH"

    async def open(self, config: Mapping[str, Any]) -> SmtpSession:
        return SmtpSession(config)


class SmtpSession:
    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = dict(config)
        self._smtp: aiosmtplib.SMTP | None = None

    async def _connection(self) -> aiosmtplib.SMTP:
        if self._smtp is not None and self._smtp.is_connected:
            return self._smtp
        tls = self.config.get("tls", "none")
        smtp = aiosmtplib.SMTP(
            hostname=self.config.get("host", "127.0.0.1"), port=int(self.config.get("port", 25)),
            timeout=float(self.config.get("timeout", 30)), use_tls=tls == "tls",
            start_tls=True if tls == "starttls" else False,
        )
        try:
            await smtp.connect()
            if self.config.get("username"):
                await smtp.login(self.config["username"], self.config.get("password", ""))
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise MailError(f"the SMTP server refused the login: {exc.code} {exc.message}", permanent=True,
                            code=exc.code) from None
        except (aiosmtplib.SMTPException, *_LOST) as exc:
            raise MailError(f"cannot reach the SMTP server: {exc}") from None
        self._smtp = smtp
        return smtp

    async def send(self, mail: OutgoingMail) -> str:
        smtp = await self._connection()
        try:
            await smtp.mail(mail.envelope_from)
            for recipient in mail.recipients:
                await smtp.rcpt(recipient)
        except aiosmtplib.SMTPResponseException as exc:
            await self._reset(smtp)
            raise MailError(f"{exc.code} {exc.message}", permanent=500 <= exc.code < 600, code=exc.code) from None
        except _LOST as exc:
            self._smtp = None
            raise MailError(f"the SMTP connection was lost: {exc}") from None
        try:
            response = await smtp.data(mail.content)
        except aiosmtplib.SMTPResponseException as exc:
            await self._reset(smtp)
            raise MailError(f"{exc.code} {exc.message}", permanent=500 <= exc.code < 600, code=exc.code) from None
        except _LOST as exc:
            self._smtp = None
            raise MailError(f"the SMTP connection was lost while sending: {exc}", accepted_maybe=True) from None
        return f"{response.code} {response.message}"

    async def _reset(self, smtp: aiosmtplib.SMTP) -> None:
        try:
            await smtp.rset()
        except (aiosmtplib.SMTPException, *_LOST):
            self._smtp = None

    async def aclose(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None and smtp.is_connected:
            try:
                await smtp.quit()
            except (aiosmtplib.SMTPException, *_LOST):
                smtp.close()
