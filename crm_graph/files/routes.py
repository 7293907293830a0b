"""``GET /files/{id}/{name}``: a stored file, by its signed link (crm_graph/files/service.py)."""

from __future__ import annotations

import hmac
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from crm_graph.core import access, ids
from crm_graph.files import service

_REFUSALS = {
    "BAD_SIGNATURE": "This download link is not valid: ask the API for a new link.",
    "LINK_EXPIRED": "This download link has expired: ask the API for a new link.",
}


def _refuse(status: int, code: str, message: str) -> Response:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status,
                        headers={"Cache-Control": "no-store"})


async def download(request: Request) -> Response:
    state = request.app.state
    params = request.query_params
    try:
        file_id = ids.decode_as(request.path_params["id"], service.NODE)
        expires = int(params.get("expires", ""))
    except ValueError:
        return _refuse(404, "NOT_FOUND", "No such file.")
    principal = params.get("principal", "")
    refused = service.check_link(state.settings, file_id, expires, principal, params.get("signature", ""))
    if refused is not None:
        return _refuse(403, refused, _REFUSALS[refused])
    async with state.db.reader() as session:
        actor = await access.principal_actor(session, principal)
        stored = await service.get(session, file_id) if actor is not None else None
    if actor is None:
        return _refuse(403, "FORBIDDEN", "The link's owner can no longer sign in.")
    # A link signed for someone who does not own the file (the owner changed, or a bug elsewhere)
    # serves nothing: the file holds what its owner could read.
    if stored is None or stored.owner is None or not hmac.compare_digest(stored.owner, principal):
        return _refuse(404, "NOT_FOUND", "No such file.")
    return Response(stored.content, media_type=stored.content_type, headers={
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(stored.name)}",
        "Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff", "ETag": f'"{stored.sha256}"',
    })


def routes() -> list[Route]:
    return [Route(service.ROUTE, download, methods=["GET"])]
