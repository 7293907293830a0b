"""Campaign templates: Jinja2 in a sandbox, over the customer's fields.

The HTML part is rendered with autoescaping, its CSS inlined (css-inline), its links rewritten to
signed click links when the campaign tracks clicks, an open pixel added when it tracks opens, and
an unsubscribe footer added when the template has no ``{{ unsubscribe_url }}`` of its own. The
plain-text part comes from the campaign's text template, or from the HTML stripped of tags.

Templates are checked when a campaign is created or changed: a syntax error, an unknown variable
or code the sandbox refuses (``{{ ''.__class__ }}``) is a ``TemplateProblem`` with its line.
"""

from __future__ import annotations

import functools
import html as htmllib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import css_inline
import nh3
from jinja2 import Template, TemplateSyntaxError, meta
from jinja2.exceptions import SecurityError, TemplateError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

# What a template may use. ``customer`` holds the fields below; the rest are per message.
CUSTOMER_FIELDS = ("id", "display_name", "first_name", "last_name", "organization_name", "email", "city",
                   "country", "locale", "job_title")
VARIABLES = ("customer", "campaign", "unsubscribe_url")
SAMPLE = {
    "customer": {"id": "Q3VzdG9tZXI6MQ==", "display_name": "Ada Lovelace", "first_name": "Ada", "last_name": "Lovelace",
                 "organization_name": None, "email": "ada@example.com", "city": "London", "country": "GB",
                 "locale": "en", "job_title": None},
    "campaign": {"name": "Sample", "id": "Q2FtcGFpZ246MQ=="},
    "unsubscribe_url": "https://crm.example/mail/u/sample",
}
MAX_TEMPLATE = 512 * 1024

_HREF = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(https?://[^"'\s<>]+)\2""", re.IGNORECASE)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)


class TemplateProblem(Exception):
    """``code``: TEMPLATE_SYNTAX, UNKNOWN_VARIABLE, UNSAFE_TEMPLATE, TOO_LARGE, RENDER_FAILED."""

    def __init__(self, code: str, message: str, part: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.part = part  # html | text | subject


def _env(autoescape: bool) -> ImmutableSandboxedEnvironment:
    return ImmutableSandboxedEnvironment(autoescape=autoescape, trim_blocks=True, lstrip_blocks=True)


HTML_ENV = _env(True)
TEXT_ENV = _env(False)


def check(subject: str, html: str, text: str | None) -> None:
    """Raise ``TemplateProblem`` for the first part that would not render for every customer."""
    for part, source, env in (("subject", subject, TEXT_ENV), ("html", html, HTML_ENV), ("text", text, TEXT_ENV)):
        if source is None:
            continue
        if len(source.encode()) > MAX_TEMPLATE:
            raise TemplateProblem("TOO_LARGE", f"The {part} template is larger than {MAX_TEMPLATE // 1024} KB.", part)
        try:  # parsing, and compiling (which finds unknown filters and tests)
            unknown = sorted(meta.find_undeclared_variables(env.parse(source)) - set(VARIABLES))
        except TemplateSyntaxError as exc:
            raise TemplateProblem("TEMPLATE_SYNTAX", f"line {exc.lineno}: {exc.message}", part) from None
        if unknown:
            raise TemplateProblem("UNKNOWN_VARIABLE", f"unknown variable {unknown[0]!r}; templates may use "
                                  f"{', '.join(VARIABLES)} (customer: {', '.join(CUSTOMER_FIELDS)})", part)
        _render(env, source, SAMPLE, part)


@functools.lru_cache(maxsize=64)
def _compiled(autoescape: bool, source: str) -> Template:
    """A campaign's template compiled once per process, not once per message."""
    return (HTML_ENV if autoescape else TEXT_ENV).from_string(source)


def _render(env: ImmutableSandboxedEnvironment, source: str, context: Mapping[str, Any], part: str) -> str:
    try:
        return _compiled(env is HTML_ENV, source).render(**context)
    except SecurityError as exc:
        raise TemplateProblem("UNSAFE_TEMPLATE", f"the template uses what it may not: {exc}", part) from None
    except (UndefinedError, TemplateError, TypeError, ValueError, ArithmeticError) as exc:
        raise TemplateProblem("RENDER_FAILED", f"the template failed: {exc}", part) from None


@dataclass(frozen=True)
class Rendered:
    subject: str
    html: str
    text: str
    links: tuple[str, ...]  # the http(s) links of the HTML, in order, before rewriting


def render(
    *,
    subject: str,
    html: str,
    text: str | None,
    context: Mapping[str, Any],
    click_url: Callable[[str], str] | None = None,
    open_url: str | None = None,
) -> Rendered:
    """One message's parts. ``click_url(original)`` gives the tracked link for a URL."""
    unsubscribe = context["unsubscribe_url"]
    subject_out = " ".join(_render(TEXT_ENV, subject, context, "subject").split())
    body = _render(HTML_ENV, html, context, "html")
    if "unsubscribe_url" not in html:
        body = _append(body, f'<p style="font-size:12px;color:#666">You receive this because you subscribed. '
                             f'<a href="{htmllib.escape(unsubscribe)}">Unsubscribe</a></p>')
    links = tuple(dict.fromkeys(m.group(3) for m in _HREF.finditer(body) if m.group(3) != unsubscribe))
    untracked = body
    if click_url is not None:
        def swap(m: re.Match[str]) -> str:
            url = htmllib.unescape(m.group(3))
            if m.group(3) == unsubscribe or url == unsubscribe:
                return m.group(0)
            return f"{m.group(1)}{m.group(2)}{htmllib.escape(click_url(url))}{m.group(2)}"
        body = _HREF.sub(swap, body)
    if open_url is not None:
        body = _append(body, f'<img src="{htmllib.escape(open_url)}" width="1" height="1" alt="" style="display:none">')
    try:
        body = css_inline.inline(body)
    except ValueError as exc:  # css-inline refuses a stylesheet it cannot parse
        raise TemplateProblem("RENDER_FAILED", f"the CSS could not be inlined: {exc}", "html") from None
    if text is not None:
        plain = _render(TEXT_ENV, text, context, "text")
        if "unsubscribe_url" not in text:
            plain = f"{plain.rstrip()}\n\n--\nUnsubscribe: {unsubscribe}\n"
    else:
        plain = text_of(untracked)
    return Rendered(subject_out, body, plain, tuple(htmllib.unescape(u) for u in links))


def text_of(body: str) -> str:
    """A readable plain-text version of HTML: links kept after their text, tags dropped."""
    body = re.sub(r"(?is)<(style|script|head)\b.*?</\1\s*>", "", body)
    body = _HREF_TEXT.sub(lambda m: f"{m.group(3)} ({m.group(2)})", body)
    body = re.sub(r"(?i)<br\s*/?>|<p\b|</p\s*>|</div\s*>|</h[1-6]\s*>|</li\s*>|</tr\s*>", lambda m: "\n" + m.group(0), body)
    stripped = htmllib.unescape(nh3.clean(body, tags=set()))
    lines = [" ".join(line.split()) for line in stripped.splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


_HREF_TEXT = re.compile(r"""<a\b[^>]*?\bhref\s*=\s*(["'])([^"']+)\1[^>]*>(.*?)</a\s*>""", re.IGNORECASE | re.DOTALL)


def _append(body: str, fragment: str) -> str:
    match = None
    for match in _BODY_END.finditer(body):
        pass
    if match is None:
        return f"{body}\n{fragment}"
    return f"{body[:match.start()]}{fragment}\n{body[match.start():]}"
