"""The customer card a helpdesk shows beside a ticket, as JSON at ``/service/customers/{id}/card``:
what the CRM knows (open orders, the satisfaction index, open tickets), only for a program that
signs in with a role seeing every record; bad ids and strangers get a clear JSON answer."""

from __future__ import annotations

from crm_graph.testing.client import asgi_client
from service_support import customer

ORDER = "mutation($i: CreateOrderInput!) { createOrder(input: $i) { order { id } errors { field code message } } }"
TICKET = "mutation($i: CreateTicketInput!) { createTicket(input: $i) { ticket { id } errors { field code message } } }"


async def test_the_card_shows_what_the_crm_knows_to_an_integration_only(crm_client, crm_app, crm_make_key):
    ada = await customer(crm_client, "ada@example.com")
    for amount in ("49.00", "51.00"):
        await crm_client.mutate(ORDER, {"i": {"customerId": ada, "currency": "EUR", "status": "CONFIRMED", "lineItems": [
            {"description": "Kit", "quantity": "1", "unitPrice": {"amount": amount, "currency": "EUR"}}]}})
    await crm_client.mutate(TICKET, {"i": {"customerId": ada, "subject": "Where is it?", "channel": "EMAIL"}})
    number = ada  # the global ID works as well as the customer's number
    integration = await crm_make_key("INTEGRATION", email="rt@example.com")
    async with asgi_client(crm_app, integration) as http:
        answer = await http.get(f"/service/customers/{number}/card")
        assert answer.status_code == 200, answer.text
        card = answer.json()
        assert (card["name"], card["email"], card["openOrders"], card["openOrderValue"], card["ticketsOpen"]) == \
            ("Ada Lovelace", "ada@example.com", 2, "100.00 EUR", 1)
        assert card["reference"].startswith("CRM-C-")
        same = await http.get(f"/service/customers/{card['reference'].removeprefix('CRM-C-')}/card")
        assert same.json() == card
        for missing in ("999999", "not-an-id", "9" * 30):
            gone = await http.get(f"/service/customers/{missing}/card")
            assert gone.status_code == 404 and gone.json()["error"]["code"] == "NOT_FOUND"
    async with asgi_client(crm_app, await crm_make_key("SALES", email="rep@example.com")) as http:
        refused = await http.get(f"/service/customers/{number}/card")
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "FORBIDDEN"
    async with asgi_client(crm_app, None) as http:
        assert (await http.get(f"/service/customers/{number}/card")).status_code == 401
    async with asgi_client(crm_app, "crm_key_wrong") as http:
        assert (await http.get(f"/service/customers/{number}/card")).status_code == 401
