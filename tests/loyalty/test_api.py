"""The loyalty API as a frontend uses it: `Customer.loyalty`, earnPoints, redeemPoints and
adjustPoints with their idempotency keys, rewards and coupons, clear errors for bad input, and
who may do what."""

from __future__ import annotations

from crm_graph.app import create_app
from crm_graph.testing.auth import make_key
from crm_graph.testing.client import GraphQLClient, asgi_client

ERRORS = "errors { field code message }"
CUSTOMER = "mutation($n: String!) { createCustomer(input: {kind: PERSON, lastName: $n}) { customer { id } errors { code } } }"
LOYALTY = """query($id: ID!) { node(id: $id) { ... on Customer { loyalty {
  balance { active pending } tier { key } qualifyingPoints pointsToNextTier nextTier { key }
  history(first: 10) { kind points remaining source reason } coupons { code status percentOff } } } } }"""
EARN = f"mutation($input: EarnPointsInput!) {{ earnPoints(input: $input) {{ entry {{ kind points }} balance {{ active pending }} {ERRORS} }} }}"
REDEEM = (f"mutation($input: RedeemPointsInput!) {{ redeemPoints(input: $input) {{ entry {{ points }} "
          f"coupon {{ code status percentOff expiresAt }} balance {{ active }} {ERRORS} }} }}")
ADJUST = f"mutation($input: AdjustPointsInput!) {{ adjustPoints(input: $input) {{ entry {{ points }} balance {{ active }} {ERRORS} }} }}"


def codes(payload) -> list[tuple[str, str]]:
    return [(e["field"], e["code"]) for e in payload["errors"]]


async def new_customer(client, name: str = "Lund") -> str:
    return (await client.mutate(CUSTOMER, {"n": name}))["customer"]["id"]


async def test_points_tiers_and_rewards_through_the_api(client):
    cid = await new_customer(client)
    await client.mutate(f"mutation {{ createLoyaltyTier(input: {{key: \"gold\", name: \"Gold\", threshold: 300, multiplier: \"1.5\"}}) {{ tier {{ key }} {ERRORS} }} }}")
    await client.mutate(f"mutation {{ saveLoyaltyReward(input: {{key: \"ten\", name: \"10% off\", cost: 150, percentOff: \"10\"}}) {{ reward {{ key }} {ERRORS} }} }}")

    earned = await client.mutate(EARN, {"input": {"customerId": cid, "points": 200, "idempotencyKey": "signup", "reason": "welcome"}})
    again = await client.mutate(EARN, {"input": {"customerId": cid, "points": 200, "idempotencyKey": "signup", "reason": "welcome"}})
    assert earned["balance"] == again["balance"] == {"active": 200, "pending": 0}
    await client.mutate(EARN, {"input": {"customerId": cid, "points": 50, "idempotencyKey": "review", "pendingDays": 14}})

    view = (await client.execute(LOYALTY, {"id": cid}))["node"]["loyalty"]
    assert view["balance"] == {"active": 200, "pending": 50}
    assert (view["tier"], view["qualifyingPoints"], view["pointsToNextTier"], view["nextTier"]) == (None, 250, 50, {"key": "gold"})
    assert [(h["kind"], h["points"], h["source"]) for h in view["history"]] == [("EARN", 50, "api"), ("EARN", 200, "api")]

    redeemed = await client.mutate(REDEEM, {"input": {"customerId": cid, "rewardKey": "ten", "idempotencyKey": "r1"}})
    replay = await client.mutate(REDEEM, {"input": {"customerId": cid, "rewardKey": "ten", "idempotencyKey": "r1"}})
    assert redeemed["entry"]["points"] == -150 and redeemed["balance"]["active"] == 50
    assert replay["coupon"]["code"] == redeemed["coupon"]["code"] and redeemed["coupon"]["status"] == "AVAILABLE"
    found = await client.execute("query($c: String!) { coupon(code: $c) { code percentOff customerId } }",
                                 {"c": redeemed["coupon"]["code"].lower()})
    assert found["coupon"] == {"code": redeemed["coupon"]["code"], "percentOff": "10.0000", "customerId": cid}

    adjusted = await client.mutate(ADJUST, {"input": {"customerId": cid, "points": -20, "reason": "goodwill reversed", "idempotencyKey": "a1"}})
    assert adjusted["balance"]["active"] == 30
    view = (await client.execute(LOYALTY, {"id": cid}))["node"]["loyalty"]
    assert [c["code"] for c in view["coupons"]] == [redeemed["coupon"]["code"]]


async def test_bad_input_gets_field_errors_and_changes_nothing(client):
    cid = await new_customer(client)
    bad = [
        (EARN, {"customerId": cid, "points": 0, "idempotencyKey": "k"}, [("points", "INVALID_VALUE")]),
        (EARN, {"customerId": cid, "points": 10, "idempotencyKey": ""}, [("idempotencyKey", "REQUIRED")]),
        (EARN, {"customerId": cid, "points": 10, "idempotencyKey": "k", "pendingDays": -1}, [("pendingDays", "INVALID_VALUE")]),
        (REDEEM, {"customerId": cid, "points": 10, "idempotencyKey": "k2"}, [("points", "INSUFFICIENT_POINTS")]),
        (REDEEM, {"customerId": cid, "rewardKey": "nope", "idempotencyKey": "k3"}, [("rewardKey", "NOT_FOUND")]),
        (ADJUST, {"customerId": cid, "points": 5, "reason": "", "idempotencyKey": "k4"}, [("reason", "REQUIRED")]),
    ]
    for query, data, expected in bad:
        (payload,) = (await client.execute(query, {"input": data})).values()
        assert codes(payload) == expected, data
    await client.mutate(EARN, {"input": {"customerId": cid, "points": 10, "idempotencyKey": "k"}})
    (conflict,) = (await client.execute(EARN, {"input": {"customerId": cid, "points": 11, "idempotencyKey": "k"}})).values()
    assert codes(conflict) == [("idempotencyKey", "IDEMPOTENCY_CONFLICT")]
    body = await client.post(EARN, {"input": {"customerId": "not-an-id", "points": 1, "idempotencyKey": "z"}})
    assert body["errors"][0]["message"] and "Traceback" not in str(body)
    view = (await client.execute(LOYALTY, {"id": cid}))["node"]["loyalty"]
    assert view["balance"] == {"active": 10, "pending": 0} and len(view["history"]) == 1


async def test_numbers_that_are_not_finite_or_have_too_many_places_are_refused(client):
    """NaN and the infinities are refused by the Decimal scalar; more places than the columns
    keep is a field error each, not a value rounded away silently. Never an internal error."""
    cid = await new_customer(client)
    reward = f"mutation($input: LoyaltyRewardInput!) {{ saveLoyaltyReward(input: $input) {{ reward {{ key }} {ERRORS} }} }}"
    tier = f"mutation($input: LoyaltyTierInput!) {{ createLoyaltyTier(input: $input) {{ tier {{ key }} {ERRORS} }} }}"
    rule = f"mutation($input: LoyaltyRuleInput!) {{ createLoyaltyRule(input: $input) {{ rule {{ id }} {ERRORS} }} }}"
    coupon = f"mutation($input: IssueCouponInput!) {{ issueCoupon(input: $input) {{ coupon {{ code }} {ERRORS} }} }}"
    for number in ("NaN", "-Infinity", "Infinity", "12.34567"):
        cases = [
            (reward, {"key": "r", "name": "R", "cost": 10, "percentOff": number}, "percentOff"),
            (reward, {"key": "r", "name": "R", "cost": 10, "amountOff": {"amount": number, "currency": "EUR"}}, "amountOff"),
            (tier, {"key": "t", "name": "T", "threshold": 10, "multiplier": number}, "multiplier"),
            (rule, {"kind": "SPEND", "name": "S", "points": number}, "points"),
            (coupon, {"customerId": cid, "idempotencyKey": "c", "percentOff": number}, "percentOff"),
        ]
        for query, data, field in cases:
            body = await client.post(query, {"input": data})
            if number != "12.34567":  # no number at all: the Decimal scalar refuses it as it is read
                (error,) = body["errors"]
                assert "data" not in body and "Value cannot represent a Decimal" in error["message"], (number, body)
                continue
            assert "errors" not in body, (number, body)
            (payload,) = body["data"].values()
            assert codes(payload) == [(field, "INVALID_VALUE")], (number, data)
    assert (await client.mutate(reward, {"input": {"key": "r", "name": "R", "cost": 10, "percentOff": "12.5"}}))["reward"] == {"key": "r"}


async def test_who_may_earn_adjust_and_configure(client, settings, db):
    cid = await new_customer(client)
    for role, earn, adjust, balance in (("SALES", True, False, 5), ("READ_ONLY", False, False, 5), ("MARKETING", True, True, 15)):
        token, _ = await make_key(db, settings, role=role, email=f"{role.lower()}@example.com")
        app = create_app(settings, db=db, dispatcher=False, jobs=False)
        async with asgi_client(app, token) as http:
            user = GraphQLClient(http, app)
            got = await user.post(EARN, {"input": {"customerId": cid, "points": 5, "idempotencyKey": f"e-{role}"}})
            assert ("errors" not in got) is earn, (role, got)
            got = await user.post(ADJUST, {"input": {"customerId": cid, "points": 5, "reason": "r", "idempotencyKey": f"a-{role}"}})
            assert ("errors" not in got) is adjust, (role, got)
            seen = await user.execute(LOYALTY, {"id": cid})
            assert seen["node"]["loyalty"]["balance"]["active"] == balance  # every role that reads sees the points


async def test_a_page_of_customers_with_their_loyalty_costs_a_fixed_number_of_queries(client, sql_counter):
    for i in range(3):
        cid = await new_customer(client, f"Q{i}")
        await client.mutate(EARN, {"input": {"customerId": cid, "points": 10 + i, "idempotencyKey": "q"}})
    query = "{ customers(first: %d) { edges { node { id loyalty { balance { active pending } tier { key } pointsToNextTier } } } } }"
    await client.warm_up()
    sql_counter.count = 0
    small = await client.execute(query % 1)
    few = sql_counter.count
    sql_counter.count = 0
    large = await client.execute(query % 3)
    assert sql_counter.count == few
    assert len(small["customers"]["edges"]) == 1
    assert sorted(e["node"]["loyalty"]["balance"]["active"] for e in large["customers"]["edges"]) == [10, 11, 12]
