"""A `crm-graph import` killed halfway (SIGKILL) and run again imports every row exactly once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from crm_graph.customers.models import Customer, CustomerEmail
from crm_graph.imports.models import ImportJob, ImportStatus

N = 3_000
MAPPING = {"columns": [{"source": "id", "target": "externalId"}, {"source": "name", "target": "fullName"},
                       {"source": "email", "target": "email"}]}


def _command(path: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "crm_graph.cli", "import", str(path), "--entity", "CUSTOMER", "--mapping", json.dumps(MAPPING),
            "--mode", "UPSERT", "--key", "EXTERNAL_REF", *extra]


async def test_killed_import_resumes_without_duplicates(settings, db, tmp_path) -> None:
    path = tmp_path / "customers.csv"
    path.write_text("id,name,email\n" + "".join(f"R{i},Kim Number{i},kim{i}@example.com\n" for i in range(N)), encoding="utf-8")
    env = {**os.environ, "CRM_DATABASE_URL": settings.database_url, "CRM_SECRET_KEY": settings.secret_key}
    proc = subprocess.Popen(_command(path, "--batch-rows", "100", "--pause", "0.2"), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=Path(__file__).parents[2])
    done = 0
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            async with db.reader() as session:
                done = await session.scalar(sa.select(ImportJob.rows_done)) or 0
            if 0 < done < N // 2:
                break
            await asyncio.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(10)
    async with db.reader() as session:
        job = await session.scalar(sa.select(ImportJob))
        written = await session.scalar(sa.select(sa.func.count()).select_from(Customer))
    assert job.status is ImportStatus.RUNNING and 0 < job.rows_done < N
    assert written == job.rows_done  # the checkpoint and the rows were committed together

    result = subprocess.run(_command(path), env=env, capture_output=True, cwd=Path(__file__).parents[2], timeout=120)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert "resuming import job" in result.stderr.decode()
    summary = json.loads(result.stdout.decode().strip().splitlines()[-1])
    assert (summary["status"], summary["rowsDone"], summary["rowsCreated"], summary["rowsFailed"]) == ("SUCCEEDED", N, N, 0)
    async with db.reader() as session:
        customers = await session.scalar(sa.select(sa.func.count()).select_from(Customer))
        refs = await session.scalar(sa.select(sa.func.count(sa.distinct(Customer.external_id))))
        emails = await session.scalar(sa.select(sa.func.count()).select_from(CustomerEmail))
        jobs = await session.scalar(sa.select(sa.func.count()).select_from(ImportJob))
    assert (customers, refs, emails, jobs) == (N, N, N, 1)
