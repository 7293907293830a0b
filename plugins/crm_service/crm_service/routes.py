"""``GET /service/customers/{id}/card``: the customer card as JSON, for a helpdesk page to show
beside a ticket (the same card the connector pushes). ``{id}`` is the customer's number (as in
the card's ``CRM-C-42`` reference) or global ID. Sign in as for the API (an API key of the
INTEGRATION role, say): the caller must read customers and see every record (``view_all``),
since the card is asked for by a program, not by a person with their own sharing rules."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from crm_graph.core import ids
from crm_graph.auth.authenticate import InvalidCredentials
from crm_graph.core.hooks import actor_from_request
from crm_service.card import customer_card, public_url


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


async def card_route(request: Request) -> JSONResponse:
    state = request.app.state
    try:
        actor = await actor_from_request(state.plugins, request, state.settings)
    except InvalidCredentials as exc:
        return _error(401, "UNAUTHENTICATED", str(exc))
    if actor is None:
        return _error(401, "UNAUTHENTICATED", "Sign in: Authorization: Bearer <API key>.")
    if not (actor.can("customers", "read") and actor.view_all):
        return _error(403, "FORBIDDEN", "The card needs customers:read and a role that sees every record (INTEGRATION).")
    raw = request.path_params["id"]
    try:
        customer_id = int(raw) if raw.isdigit() else ids.decode_as(raw, "Customer")
    except ValueError:
        return _error(404, "NOT_FOUND", "No such customer.")
    if customer_id >= 2**63:
        return _error(404, "NOT_FOUND", "No such customer.")
    async with state.db.reader() as session:
        card = await customer_card(session, customer_id, public_url=public_url())
    if card is None:
        return _error(404, "NOT_FOUND", "No such customer.")
    return JSONResponse({_camel(key): value for key, value in card.as_dict().items()})


def _camel(name: str) -> str:
    first, *rest = name.split("_")
    return first + "".join(word.title() for word in rest)


ROUTES = [Route("/service/customers/{id}/card", card_route, methods=["GET"])]
