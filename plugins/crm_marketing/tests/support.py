"""What the marketing tests share: customers and segments made through the API, campaigns, and
the environment that points the plugin at the test's own mail server."""

from __future__ import annotations

from typing import Any

CREATE_CUSTOMERS = """
mutation($inputs: [CreateCustomerInput!]!) {
  createCustomers(inputs: $inputs) { results { customer { id } errors { field code message } } errors { code message } }
}
"""
CREATE_SEGMENT = """
mutation($input: CreateSegmentInput!) { createSegment(input: $input) { segment { id } errors { field code message } } }
"""
CREATE_CAMPAIGN = """
mutation($input: CreateCampaignInput!) {
  createCampaign(input: $input) { campaign { id status } errors { field code message } }
}
"""
START = "mutation($id: ID!) { startCampaign(id: $id) { campaign { id status audience } errors { field code message } } }"
STATS = """
query($id: ID!) { node(id: $id) { ... on Campaign { status audience stats {
  recipients sent pending failed skipped unconfirmed bounced softBounced opened opens clicked clicks unsubscribed complained
  links { url clicks uniqueClicks } attributed { windowDays leads opportunities orders revenue { amount currency } } } } } }
"""


def mail_env(monkeypatch: Any, port: int, plugins: Any = None, **extra: str) -> None:
    """The plugin's settings for a test: the sink (or exim) on ``port``, https links, no pacing.
    With ``plugins`` (the app's plugin manager), its marketing runtime is made again from them."""
    values = {"CRM_SMTP_HOST": "127.0.0.1", "CRM_SMTP_PORT": str(port), "CRM_MAIL_FROM": "Shop News <news@shop.example.com>",
              "CRM_PUBLIC_URL": "https://crm.example.com", "CRM_MARKETING_RETURN_DOMAIN": "bounces.example.com", **extra}
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    if plugins is not None:
        plugins._crm_marketing_runtime = None


async def customers(client: Any, people: list[dict[str, Any]]) -> list[str]:
    """Create ``people`` (dicts with email, consent, tags, first_name) 100 at a time; their IDs."""
    out: list[str] = []
    for start in range(0, len(people), 100):
        inputs = [{"kind": "PERSON", "firstName": p.get("first_name", "Kim"), "lastName": p.get("last_name", f"N{start + i}"),
                   "emails": [{"address": p["email"], "primary": True}], "tags": p.get("tags", ["newsletter"]),
                   "emailConsent": {"status": p.get("consent", "OPTED_IN"), "source": "test"}}
                  for i, p in enumerate(people[start:start + 100])]
        result = await client.mutate(CREATE_CUSTOMERS, {"inputs": inputs})
        for item in result["results"]:
            assert item["errors"] == [], item
            out.append(item["customer"]["id"])
    return out


async def tag_segment(client: Any, tag: str = "newsletter") -> str:
    made = await client.mutate(CREATE_SEGMENT, {"input": {"name": f"tag {tag}", "kind": "DYNAMIC",
                                                          "filter": {"tags": {"containsAny": [tag]}}}})
    return made["segment"]["id"]


async def campaign(client: Any, segment: str, **fields: Any) -> str:
    data = {"name": "Spring sale", "subject": "Hello {{ customer.first_name }}", "segmentId": segment,
            "html": "<html><head><style>p { color: #333 }</style></head><body><p>Hi {{ customer.first_name }},</p>"
                    "<p><a href=\"https://shop.example.com/spring?x=1&amp;y=2\">See the sale</a></p></body></html>", **fields}
    made = await client.mutate(CREATE_CAMPAIGN, {"input": data})
    return made["campaign"]["id"]
