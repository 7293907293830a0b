"""Pipelines and stages through GraphQL."""

from __future__ import annotations

from tests.sales.conftest import CREATE_PIPELINE, DEFAULT_PIPELINE, codes

UPDATE = """
mutation($id: ID!, $input: UpdatePipelineInput!, $v: Int) {
  updatePipeline(id: $id, input: $input, expectedVersion: $v) {
    pipeline { id name isDefault version stages { id name kind probability position } }
    errors { field code message }
  }
}
"""
OPPORTUNITY = "query($id: ID!) { opportunity(id: $id) { stage { name } stageHistory { stage { name removedAt } leftAt } } }"

STAGES = [
    {"name": "New", "probability": 10},
    {"name": "Talking", "probability": 40},
    {"name": "Won", "kind": "WON"},
    {"name": "Lost", "kind": "LOST"},
]


async def test_a_default_pipeline_exists_after_migration(client):
    data = await client.execute(DEFAULT_PIPELINE)
    (edge,) = data["pipelines"]["edges"]
    pipeline = edge["node"]
    assert pipeline["isDefault"] is True
    assert [(s["kind"], s["probability"]) for s in pipeline["stages"]] == [
        ("OPEN", 10), ("OPEN", 25), ("OPEN", 50), ("OPEN", 75), ("WON", 100), ("LOST", 0),
    ]


async def test_several_pipelines_and_switching_the_default(client):
    renewals = (await client.mutate(CREATE_PIPELINE, {"input": {"name": "Renewals", "stages": STAGES}}))["pipeline"]
    assert renewals["isDefault"] is False
    assert [s["probability"] for s in renewals["stages"]] == [10, 40, 100, 0]
    made = await client.mutate(UPDATE, {"id": renewals["id"], "input": {"isDefault": True}, "v": 1})
    assert made["pipeline"]["isDefault"] is True
    assert made["pipeline"]["version"] == 2
    listed = await client.execute(DEFAULT_PIPELINE)
    assert [e["node"]["isDefault"] for e in listed["pipelines"]["edges"]] == [False, True]


async def test_invalid_stage_lists_are_refused(client):
    body = await client.execute(
        CREATE_PIPELINE,
        {"input": {"name": "Sales", "stages": [
            {"name": "Open", "probability": 150},
            {"name": "open", "probability": 10},
            {"name": "Won", "kind": "WON", "probability": 90},
        ]}},
    )
    assert codes(body["createPipeline"]) == {
        ("name", "DUPLICATE"),
        ("stages.0.probability", "OUT_OF_RANGE"),
        ("stages.1.name", "DUPLICATE"),
        ("stages.2.probability", "OUT_OF_RANGE"),
        ("stages", "INVALID_VALUE"),
    }


async def test_rename_reorder_reweight_and_add_stages(client):
    pipeline = (await client.mutate(CREATE_PIPELINE, {"input": {"name": "Partners", "stages": STAGES}}))["pipeline"]
    new, talking, won, lost = pipeline["stages"]
    updated = await client.mutate(
        UPDATE,
        {"id": pipeline["id"], "v": pipeline["version"], "input": {"name": "Partner deals", "stages": [
            {"id": talking["id"], "name": "Talks", "probability": 45},
            {"id": new["id"], "name": "New"},
            {"name": "Contract", "probability": 80},
            {"id": won["id"], "name": "Won", "kind": "WON"},
            {"id": lost["id"], "name": "Lost", "kind": "LOST"},
        ]}},
    )
    result = updated["pipeline"]
    assert result["name"] == "Partner deals"
    assert result["version"] == pipeline["version"] + 1
    assert [(s["name"], s["probability"], s["position"]) for s in result["stages"]] == [
        ("Talks", 45, 0), ("New", 10, 1), ("Contract", 80, 2), ("Won", 100, 3), ("Lost", 0, 4),
    ]
    assert result["stages"][0]["id"] == talking["id"]


async def test_a_stage_in_use_is_removed_only_by_moving_its_opportunities(client, sales):
    pipeline = (await client.mutate(CREATE_PIPELINE, {"input": {"name": "Field", "stages": STAGES}}))["pipeline"]
    new, talking, won, lost = pipeline["stages"]
    customer = await sales.customer()
    opportunity = await sales.opportunity(customer, pipelineId=pipeline["id"], amount={"amount": "10", "currency": "EUR"})
    without_new = [
        {"id": talking["id"], "name": "Talking", "probability": 40},
        {"id": won["id"], "name": "Won", "kind": "WON"},
        {"id": lost["id"], "name": "Lost", "kind": "LOST"},
    ]
    refused = await client.execute(UPDATE, {"id": pipeline["id"], "input": {"stages": without_new}})
    assert codes(refused["updatePipeline"]) == {("stages", "STAGE_IN_USE")}
    wrong_kind = await client.execute(
        UPDATE, {"id": pipeline["id"], "input": {"stages": without_new, "moveOpportunities": [
            {"fromStageId": new["id"], "toStageId": won["id"]}]}},
    )
    assert codes(wrong_kind["updatePipeline"]) == {("moveOpportunities.0.toStageId", "INVALID_VALUE")}

    moved = await client.mutate(
        UPDATE, {"id": pipeline["id"], "input": {"stages": without_new, "moveOpportunities": [
            {"fromStageId": new["id"], "toStageId": talking["id"]}]}},
    )
    assert [s["name"] for s in moved["pipeline"]["stages"]] == ["Talking", "Won", "Lost"]
    data = await client.execute(OPPORTUNITY, {"id": opportunity["id"]})
    assert data["opportunity"]["stage"]["name"] == "Talking"
    history = data["opportunity"]["stageHistory"]
    assert [h["stage"]["name"] for h in history] == ["New", "Talking"]
    assert history[0]["stage"]["removedAt"] is not None and history[0]["leftAt"] is not None
