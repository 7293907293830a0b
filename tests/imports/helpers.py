"""Files and calls the import tests share."""

from __future__ import annotations

import base64
import io
from datetime import datetime
from typing import Any

from openpyxl import Workbook

from crm_graph.imports import service

START = """mutation($input: StartImportInput!) { startImport(input: $input) {
  importJob { id status } errors { field code message } } }"""
JOB = """query($id: ID!) { importJob(id: $id) { id status progress rowsTotal rowsDone rowsFailed rowsCreated rowsUpdated
  rowsUnchanged errorReportUrl failure dryRun finishedAt errors { row column field code message } } }"""


def xlsx(rows: list[list[Any]]) -> bytes:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Customers")
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


async def start(client: Any, **fields: Any) -> dict[str, Any]:
    content = fields.pop("content")
    payload = (await client.execute(START, {"input": {"content": base64.b64encode(content).decode(), **fields}}))["startImport"]
    return payload


async def run(client: Any, **fields: Any) -> dict[str, Any]:
    """Start an import, wait for the background job, return the finished job."""
    payload = await start(client, **fields)
    assert payload["errors"] == [], payload["errors"]
    await service.wait_background()
    return (await client.execute(JOB, {"id": payload["importJob"]["id"]}))["importJob"]


def iso(value: datetime) -> str:
    return value.isoformat()
