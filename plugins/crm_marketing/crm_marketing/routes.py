"""The public mail routes: confirm, unsubscribe (RFC 8058 one-click), open pixel, click
redirect, the subscription form and the inbound bounce route.

None of them needs a sign-in: each is authorised by its signed token (or, for bounces, a shared
secret). Every answer is a small page (HTML, every shown value escaped) or JSON; a failure of
ours is a 503 with Retry-After, never a 500 or a traceback. Pages carry ``Referrer-Policy:
no-referrer`` (the token is in the URL) and a CSP that allows no script.

- ``GET /mail/confirm/{token}``: confirms (200; 200 "already" for a replay; 400 forged; 410 expired).
- ``GET /mail/u/{token}``: a page with a button, and a choice of "this list" or "everything" when
  the campaign has a list. GET never unsubscribes: mail scanners follow links.
- ``POST /mail/u/{token}``: unsubscribes. The RFC 8058 body ``List-Unsubscribe=One-Click``
  (urlencoded or multipart) leaves what the mail was sent for; the page's form may say
  ``scope=everything``.
- ``GET /mail/o/{token}.gif``: always the 43-byte transparent GIF, never cached.
- ``GET /mail/c/{token}``: 302 to the link's stored URL; a bad token gets a 400 page, no Location.
- ``POST /mail/subscribe``: ``email``, ``name``, ``list``, ``utm_*`` (body or query), honeypot
  ``website``; ``form_rate`` sign-ups per client address an hour (429 + Retry-After).
- ``POST /mail/bounces``: a raw DSN, ``Authorization: Bearer CRM_MARKETING_INBOUND_SECRET``
  (404 while no secret is set); 202 once recorded.
"""

from __future__ import annotations

import functools
import hmac
import html
import json
import logging
from collections.abc import Awaitable, Callable
from email import policy
from email.parser import BytesParser
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from crm_marketing import consent, tracking
from crm_marketing.runtime import Runtime, runtime_of

log = logging.getLogger("crm_marketing.routes")

FORM_LIMIT = 64 * 1024
DSN_LIMIT = 10 * 1024 * 1024
GIF = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
       b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")  # 1x1, its one colour transparent
NO_STORE = {"Cache-Control": "no-store, no-cache, must-revalidate, private, max-age=0", "Pragma": "no-cache",
            "Expires": "0"}
PAGE_HEADERS = {**NO_STORE, "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                                           "frame-ancestors 'none'; base-uri 'none'"}
STATUS_OF = {"INVALID_TOKEN": 400, "EXPIRED_TOKEN": 410, "VERSION_CONFLICT": 409}


class TooLarge(Exception):
    pass


class BadBody(Exception):
    pass


# --- answers ---------------------------------------------------------------------------------


def page(title: str, *paragraphs: str, status: int = 200, form: str = "",
         headers: dict[str, str] | None = None) -> Response:
    """A minimal page; ``paragraphs`` are plain text (escaped here), ``form`` is trusted markup."""
    body = "".join(f"<p>{html.escape(p)}</p>" for p in paragraphs)
    text = (f'<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width, initial-scale=1"><meta name="robots" content="noindex">'
            f"<title>{html.escape(title)}</title><style>body{{font-family:system-ui,sans-serif;max-width:34em;"
            f"margin:3em auto;padding:0 1em;line-height:1.5}}button{{font-size:1em;padding:.5em 1.2em}}</style>"
            f"</head><body><h1>{html.escape(title)}</h1>{body}{form}</body></html>")
    return Response(text, status_code=status, media_type="text/html; charset=utf-8",
                    headers={**PAGE_HEADERS, **(headers or {})})


def _error_page(exc: consent.ConsentError) -> Response:
    titles = {"EXPIRED_TOKEN": "This link has expired", "INVALID_TOKEN": "This link is not valid"}
    return page(titles.get(exc.code, "This did not work"), exc.message, status=STATUS_OF.get(exc.code, 400))


def guarded(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """A failure of ours (the database away, a bug) is logged and answered 503, never a 500."""

    @functools.wraps(handler)
    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except Exception:  # noqa: BLE001 - the log has the traceback, the client a clear answer
            log.exception("%s %s failed", request.method, request.url.path)
            if _wants_json(request):
                return JSONResponse({"errors": [{"field": None, "code": "UNAVAILABLE",
                                                 "message": "The server could not do this now; try again later."}]},
                                    status_code=503, headers={**NO_STORE, "Retry-After": "60"})
            return page("Please try again later", "The server could not do this now.", status=503,
                        headers={"Retry-After": "60"})

    return run


def _wants_json(request: Request) -> bool:
    return "text/html" not in request.headers.get("accept", "")


def _runtime(request: Request) -> Runtime:
    return runtime_of(request.app.state.settings, request.app.state.plugins)


def _client(request: Request) -> tuple[str | None, str | None]:
    return (request.client.host if request.client else None), request.headers.get("user-agent")


# --- bodies ----------------------------------------------------------------------------------


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refusing more than ``limit`` bytes before reading them all."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def form_fields(content_type: str, body: bytes) -> dict[str, str]:
    """Fields of an urlencoded, multipart or JSON body (the first value of each name)."""
    kind = content_type.split(";", 1)[0].strip().lower()
    out: dict[str, str] = {}
    if kind == "application/json":
        try:
            data = json.loads(body or b"{}")
        except ValueError:
            raise BadBody("The body is not valid JSON.") from None
        if not isinstance(data, dict):
            raise BadBody("The JSON body must be an object.")
        return {str(k): v for k, v in data.items()}
    if kind == "multipart/form-data":
        message = BytesParser(policy=policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n" + body)
        if not message.is_multipart():
            raise BadBody("The multipart body could not be read.")
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name and part.get_filename() is None and name not in out:
                out[str(name)] = part.get_payload(decode=True).decode("utf-8", "replace")
        return out
    if kind in ("application/x-www-form-urlencoded", ""):
        for name, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
            out.setdefault(name, value)
        return out
    raise BadBody("Send the fields as application/x-www-form-urlencoded, multipart/form-data or JSON.")


# --- confirm and unsubscribe -----------------------------------------------------------------


@guarded
async def confirm_route(request: Request) -> Response:
    if request.method == "HEAD":  # a link checker's probe confirms nothing
        return page("Confirm your subscription", "Open this link in a browser to confirm.")
    ip, agent = _client(request)
    try:
        result = await consent.confirm(request.app.state.db, _runtime(request), request.path_params["token"],
                                       ip=ip, user_agent=agent)
    except consent.ConsentError as exc:
        return _error_page(exc)
    if result.already:
        return page("Already confirmed", f"{result.email} is subscribed already. Nothing else to do.")
    return page("Subscription confirmed", f"Thank you: {result.email} is now subscribed.",
                "You can unsubscribe at any time with the link at the bottom of every message.")


def _unsubscribe_form(target: consent.UnsubscribeTarget) -> str:
    choice = ""
    if target.list_key:
        label = html.escape(target.list_name or target.list_key)
        choice = (f'<p><label><input type="radio" name="scope" value="list" checked> Only the list “{label}”'
                  f'</label><br><label><input type="radio" name="scope" value="everything"> All our marketing mail'
                  f"</label></p>")
    return f'<form method="post">{choice}<p><button type="submit">Unsubscribe</button></p></form>'


@guarded
async def unsubscribe_page(request: Request) -> Response:
    try:
        target = await consent.describe_unsubscribe(request.app.state.db, _runtime(request), request.path_params["token"])
    except consent.ConsentError as exc:
        return _error_page(exc)
    who = ", ".join(target.emails) or "this address"
    if target.unsubscribed:
        return page("Already unsubscribed", f"{who} receives no marketing mail from us.")
    if target.left_list:
        everything = '<form method="post"><input type="hidden" name="scope" value="everything"><p><button ' \
                     'type="submit">Stop all marketing mail</button></p></form>'
        return page("Already unsubscribed", f"{who} no longer receives the list “{target.list_name or target.list_key}”.",
                    "Do you want to stop all our marketing mail too?", form=everything)
    what = f"the list “{target.list_name or target.list_key}”" if target.list_key else "our marketing mail"
    return page("Unsubscribe", f"Do you want {who} to stop receiving {what}?", form=_unsubscribe_form(target))


@guarded
async def unsubscribe_post(request: Request) -> Response:
    try:
        fields = form_fields(request.headers.get("content-type", ""), await read_body(request, FORM_LIMIT))
    except TooLarge:
        return page("Too large", "The request is too large.", status=413)
    except BadBody as exc:
        return page("Not understood", str(exc), status=400)
    one_click = fields.get("List-Unsubscribe") == "One-Click"
    scope = fields.get("scope")
    ip, agent = _client(request)
    try:
        result = await consent.unsubscribe(
            request.app.state.db, _runtime(request), request.path_params["token"],
            everything=True if scope == "everything" else False if scope == "list" else None, ip=ip, user_agent=agent,
            form="one-click unsubscribe (RFC 8058)" if one_click else "unsubscribe page")
    except consent.ConsentError as exc:
        return _error_page(exc)
    who = ", ".join(result.emails) or "This address"
    if result.already:
        return page("Already unsubscribed", f"{who}: this was done already; you will receive nothing more of it.")
    what = f"the list {result.list_key}" if result.list_key else "all our marketing mail"
    return page("You are unsubscribed", f"{who} will no longer receive {what}.")


async def unsubscribe_route(request: Request) -> Response:
    """One route for both methods (the plugin's paths must be unique)."""
    return await (unsubscribe_post if request.method == "POST" else unsubscribe_page)(request)


# --- tracking --------------------------------------------------------------------------------


async def open_pixel(request: Request) -> Response:
    """Always the image: a mail client must never see an error for a pixel."""
    try:
        ip, agent = _client(request)
        await tracking.record_open(request.app.state.db, _runtime(request), request.path_params["token"],
                                   ip=ip, user_agent=agent)
    except Exception:  # noqa: BLE001 - the open is lost, the image still shown
        log.exception("recording an open failed")
    return Response(GIF, media_type="image/gif", headers=NO_STORE)


@guarded
async def click(request: Request) -> Response:
    ip, agent = _client(request)
    url = await tracking.record_click(request.app.state.db, _runtime(request), request.path_params["token"],
                                      ip=ip, user_agent=agent)
    if url is None:
        return page("This link is not valid", "The link is damaged or was not made by us, so it leads nowhere.",
                    status=400)
    return Response(status_code=302, headers={**NO_STORE, "Location": url, "Referrer-Policy": "no-referrer"})


# --- the subscription form -------------------------------------------------------------------


def _form_answer(request: Request, status: int, errors: list[dict[str, Any]] | None = None,
                 headers: dict[str, str] | None = None) -> Response:
    if errors:
        if _wants_json(request):
            return JSONResponse({"errors": errors}, status_code=status, headers={**NO_STORE, **(headers or {})})
        return page("Please check the form", *[e["message"] for e in errors], status=status, headers=headers)
    done = "Thank you. Please check your inbox: we sent you a link to confirm your subscription."
    if _wants_json(request):
        return JSONResponse({"ok": True, "message": done}, status_code=status, headers=NO_STORE)
    return page("Almost done", done, status=status)


def _error(field: str | None, code: str, message: str) -> list[dict[str, Any]]:
    return [{"field": field, "code": code, "message": message}]


@guarded
async def subscribe_route(request: Request) -> Response:
    try:
        fields = form_fields(request.headers.get("content-type", ""), await read_body(request, FORM_LIMIT))
    except TooLarge:
        return _form_answer(request, 413, _error(None, "TOO_LARGE", "The form is too large."))
    except BadBody as exc:
        return _form_answer(request, 400, _error(None, "INVALID_BODY", str(exc)))
    if str(fields.get("website") or "").strip():
        return _form_answer(request, 200)  # the trap field only robots fill: an answer like any other
    db, runtime = request.app.state.db, _runtime(request)
    ip, agent = _client(request)
    wait = await consent.retry_after(db, runtime, ip)
    if wait is not None:
        return _form_answer(request, 429, _error(None, "RATE_LIMITED", "Too many sign-ups from your address: "
                                                 f"try again in {wait} seconds."), headers={"Retry-After": str(wait)})
    utm = {k: request.query_params.get(k) for k in consent.UTM_KEYS if request.query_params.get(k)}
    utm.update({k: fields[k] for k in consent.UTM_KEYS if isinstance(fields.get(k), str) and fields[k]})
    list_key = fields.get("list") or ""
    if not isinstance(list_key, str):
        return _form_answer(request, 400, _error("list", "UNKNOWN_LIST", "The list must be given by its key."))
    try:
        await consent.subscribe(db, runtime, email=fields.get("email"), name=fields.get("name") or None,
                                list_key=list_key, ip=ip, user_agent=agent, utm=utm,
                                form=str(fields.get("form") or "subscribe form")[:200])
    except consent.ConsentError as exc:
        return _form_answer(request, 400, _error(exc.field, exc.code, exc.message))
    return _form_answer(request, 200)


# --- bounces ---------------------------------------------------------------------------------


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(body, status_code=status, headers={**NO_STORE, **(headers or {})})


@guarded
async def bounces_route(request: Request) -> Response:
    runtime = _runtime(request)
    secret = runtime.config.tuning.inbound_secret
    if not secret:
        return _json(404, {"error": {"code": "NOT_FOUND", "message": "Not found."}})
    given = request.headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), secret.encode()):
        return _json(401, {"error": {"code": "UNAUTHENTICATED", "message": "Send Authorization: Bearer <secret>."}},
                     {"WWW-Authenticate": 'Bearer realm="crm_marketing bounces"'})
    try:
        raw = await read_body(request, DSN_LIMIT)
    except TooLarge:
        return _json(413, {"error": {"code": "TOO_LARGE", "message": "A bounce is at most 10 MB."}})
    if not raw.strip():
        return _json(400, {"error": {"code": "EMPTY", "message": "Post the raw message as the body."}})
    from crm_marketing import bounces

    # classify never raises: garbage is OTHER, recorded once like any other inbound message
    inbound = bounces.classify(raw, return_local=runtime.config.tuning.return_local)
    result = await consent.apply_bounce(request.app.state.db, runtime, inbound)
    return _json(202, {"kind": result.kind, "repeat": result.repeat, "suppressed": list(result.suppressed)})


ROUTES = [
    Route("/mail/confirm/{token}", confirm_route, methods=["GET"]),
    Route("/mail/u/{token}", unsubscribe_route, methods=["GET", "POST"]),
    Route("/mail/o/{token}.gif", open_pixel, methods=["GET"]),
    Route("/mail/c/{token}", click, methods=["GET"]),
    Route("/mail/subscribe", subscribe_route, methods=["POST"]),
    Route("/mail/bounces", bounces_route, methods=["POST"]),
]
