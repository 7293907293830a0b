"""Webhook subscriptions through GraphQL: create, change, rotate, delete, and bad input."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.plugins.support import SECRET

CREATE = """
mutation($input: CreateWebhookSubscriptionInput!) {
  createWebhookSubscription(input: $input) {
    webhookSubscription { id url events active description version previousSecretExpiresAt }
    secret
    errors { field code message }
  }
}
"""
UPDATE = """
mutation($id: ID!, $input: UpdateWebhookSubscriptionInput!, $v: Int) {
  updateWebhookSubscription(id: $id, input: $input, expectedVersion: $v) {
    webhookSubscription { id url events active version previousSecretExpiresAt }
    secret
    errors { field code message }
  }
}
"""
DELETE = """
mutation($id: ID!) { deleteWebhookSubscription(id: $id) { webhookSubscription { id } errors { field code } } }
"""
LIST = "{ webhookSubscriptions { totalCount edges { node { id url events active } } } }"


async def test_create_returns_the_secret_once_and_lists_never_show_it(server_factory):
    server = await server_factory()
    created = await server.client.mutate(
        CREATE, {"input": {"url": "https://hooks.example.com/crm", "events": ["ticket.*", "order.paid", "ticket.*"],
                           "description": "Helpdesk sync"}}
    )
    sub = created["webhookSubscription"]
    assert sub["url"] == "https://hooks.example.com/crm"
    assert sub["events"] == ["ticket.*", "order.paid"]  # duplicates dropped
    assert sub["active"] is True and sub["version"] == 1
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 40

    listed = await server.client.execute(LIST)
    assert listed["webhookSubscriptions"]["totalCount"] == 1
    assert listed["webhookSubscriptions"]["edges"][0]["node"]["id"] == sub["id"]
    # The secret is not a field of the subscription at all.
    body = await server.client.post("{ webhookSubscriptions { edges { node { secret } } } }")
    assert "Cannot query field 'secret'" in body["errors"][0]["message"]

    own = await server.client.mutate(CREATE, {"input": {"url": "https://a.example.com/h", "events": ["*"], "secret": SECRET}})
    assert own["secret"] == SECRET


@pytest.mark.parametrize(
    "url, code",
    [
        ("ftp://hooks.example.com/x", "INVALID_URL"),
        ("hooks.example.com/x", "INVALID_URL"),
        ("https://user:pass@hooks.example.com/x", "INVALID_URL"),
        ("https://", "INVALID_URL"),
        ("http://127.0.0.1:8080/x", "FORBIDDEN_ADDRESS"),
        ("http://localhost/x", "FORBIDDEN_ADDRESS"),
        ("http://10.1.2.3/x", "FORBIDDEN_ADDRESS"),
        ("http://192.168.0.10/x", "FORBIDDEN_ADDRESS"),
        ("http://169.254.169.254/latest/meta-data", "FORBIDDEN_ADDRESS"),
        ("http://[::1]/x", "FORBIDDEN_ADDRESS"),
        ("http://[::ffff:10.0.0.1]/x", "FORBIDDEN_ADDRESS"),
        ("http://100.64.0.1/x", "FORBIDDEN_ADDRESS"),
    ],
)
async def test_urls_that_are_not_http_or_point_inside_are_refused(server_factory, settings, url, code):
    server = await server_factory(settings_=replace(settings, webhook_allow_private=False))
    body = await server.client.execute(CREATE, {"input": {"url": url, "events": ["*"]}})
    payload = body["createWebhookSubscription"]
    assert payload["webhookSubscription"] is None and payload["secret"] is None
    assert [(e["field"], e["code"]) for e in payload["errors"]] == [("url", code)]


async def test_private_addresses_are_allowed_when_the_setting_says_so(server_factory):
    server = await server_factory()  # CRM_WEBHOOK_ALLOW_PRIVATE=true in these tests
    created = await server.client.mutate(CREATE, {"input": {"url": "http://127.0.0.1:9/x", "events": ["*"]}})
    assert created["webhookSubscription"]["url"] == "http://127.0.0.1:9/x"


async def test_unknown_event_patterns_empty_lists_and_short_secrets_are_refused(server_factory):
    server = await server_factory()
    body = await server.client.execute(
        CREATE,
        {"input": {"url": "https://hooks.example.com/x", "events": ["ticket.*", "tickets.*", "order.shipped", "*.created"],
                   "secret": "short"}},
    )
    errors = [(e["field"], e["code"]) for e in body["createWebhookSubscription"]["errors"]]
    assert errors == [
        ("events.1", "UNKNOWN_EVENT_PATTERN"),
        ("events.2", "UNKNOWN_EVENT_PATTERN"),
        ("events.3", "UNKNOWN_EVENT_PATTERN"),
        ("secret", "INVALID_VALUE"),
    ]
    empty = await server.client.execute(CREATE, {"input": {"url": "https://hooks.example.com/x", "events": []}})
    assert [(e["field"], e["code"]) for e in empty["createWebhookSubscription"]["errors"]] == [("events", "REQUIRED")]
    listed = await server.client.execute(LIST)
    assert listed["webhookSubscriptions"]["totalCount"] == 0


async def test_update_changes_patterns_pauses_and_rotates_the_secret(server_factory, clock):
    server = await server_factory()
    sub = (await server.client.mutate(CREATE, {"input": {"url": "https://hooks.example.com/x", "events": ["*"]}}))["webhookSubscription"]

    changed = await server.client.mutate(UPDATE, {"id": sub["id"], "input": {"events": ["order.*"], "active": False}, "v": 1})
    assert changed["webhookSubscription"]["events"] == ["order.*"]
    assert changed["webhookSubscription"]["active"] is False
    assert changed["secret"] is None  # the secret did not change, so it is not shown

    rotated = await server.client.mutate(UPDATE, {"id": sub["id"], "input": {"rotateSecret": True}})
    assert rotated["secret"].startswith("whsec_")
    assert rotated["webhookSubscription"]["previousSecretExpiresAt"] == "2026-11-23T09:00:00+00:00"  # a day's grace

    stale = await server.client.execute(UPDATE, {"id": sub["id"], "input": {"active": True}, "v": 1})
    assert [e["code"] for e in stale["updateWebhookSubscription"]["errors"]] == ["VERSION_CONFLICT"]


async def test_delete_removes_the_subscription_from_the_list(server_factory):
    server = await server_factory()
    sub = (await server.client.mutate(CREATE, {"input": {"url": "https://hooks.example.com/x", "events": ["*"]}}))["webhookSubscription"]
    await server.client.mutate(DELETE, {"id": sub["id"]})
    assert (await server.client.execute(LIST))["webhookSubscriptions"]["totalCount"] == 0
    again = await server.client.execute(DELETE, {"id": sub["id"]})
    assert again["deleteWebhookSubscription"]["errors"] == [{"field": "id", "code": "NOT_FOUND"}]


async def test_event_types_lists_what_subscriptions_can_ask_for(server_factory):
    server = await server_factory()
    types = {t["type"] for t in (await server.client.execute("{ eventTypes { type description } }"))["eventTypes"]}
    assert {"customer.created", "order.paid", "ticket.sla_breached", "segment.member_added", "customer.merged"} <= types
