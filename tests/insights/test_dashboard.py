"""/dashboard in headless Chromium (Debian's, driven by playwright-core) against a real server with
the demo data: the visitor signs in through the page's form, every chart is drawn, nothing is
logged as an error, and what each chart holds is what the API answers for the same questions.

The demo seeds one RFM run; the test then runs, through the API, what an analyst would before
looking at churn: an RFM run 120 days back, a fresh one, a customer-value fit and a churn
assessment. `make browser-tools` installs Chromium, playwright-core (tests/insights/browser/
package.json) and the chart library; a run that starts without the last two installs them.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from crm_graph import dashboard
from crm_graph.auth import service as auth
from crm_graph.core.actor import SYSTEM
from crm_graph.seed import seed_demo
from crm_graph.settings import PROJECT_ROOT
from crm_graph.testing.auth import bearer, make_key
from tests.graphql.test_subscriptions import servers

pytestmark = pytest.mark.one_pass

BROWSER_SOURCE = Path(__file__).parent / "browser"
BROWSER_DIR = PROJECT_ROOT / "var" / "node" / "dashboard-browser"  # where `make browser-tools` installs it
LIBRARY_CACHE = PROJECT_ROOT / "var" / "node" / "dashboard-lib"  # the chart library, fetched once
CHROMIUM = "/usr/bin/chromium"
PASSWORD = "dashboard-password-1"

PREPARE = [
    ('query($d: Date) { rfmAnalysis(asOf: $d) { run { asOf } } }', "rfmAnalysis"),
    ("mutation { refreshRfmScores { errors { code } } }", "refreshRfmScores"),
    ("mutation { refreshCustomerValueModel { errors { code } } }", "refreshCustomerValueModel"),
    ("mutation { assessChurnRisks { errors { code } } }", "assessChurnRisks"),
]
SUMMARY = """{
  pipelineSummary { stages { stage { name kind } count } months { month count amount { amount } weightedAmount { amount } } }
  rfmAnalysis { run { customers } grid { recencyScore frequencyScore customers } }
  valueConcentration { top20PercentShare }
  customerValueModel { customers }
  churnRisks(first: 20) { totalCount edges { node { customer { displayName } } } }
}"""
CUSTOMERS = """query($after: String) { customers(first: 100, after: $after) { pageInfo { hasNextPage endCursor }
  edges { node { rfm { monetary { amount } } lifetimeValue { clv { amount } } } } } }"""
SUPPORT = "query($from: DateTime!, $to: DateTime!) { supportStats(from: $from, to: $to) { firstResponseCompliance resolutionCompliance csat } }"


def playwright_modules() -> Path:
    """playwright-core at the pinned version, installed by npm into var/node when missing."""
    wanted = (BROWSER_SOURCE / "package.json").read_text()
    current = BROWSER_DIR / "package.json"
    if (BROWSER_DIR / "node_modules" / "playwright-core").is_dir() and current.is_file() and current.read_text() == wanted:
        return BROWSER_DIR / "node_modules"
    npm = shutil.which("npm")
    assert npm is not None and shutil.which("node"), "Node.js and npm are needed: `make browser-tools` installs them"
    BROWSER_DIR.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=BROWSER_DIR.parent))
    (staging / "package.json").write_text(wanted)
    subprocess.run([npm, "install", "--silent", "--no-audit", "--no-fund", "--no-package-lock", "--prefix", str(staging)],
                   check=True, capture_output=True, timeout=600)
    shutil.rmtree(BROWSER_DIR, ignore_errors=True)
    try:
        staging.rename(BROWSER_DIR)
    except OSError:  # another run installed it at the same moment
        shutil.rmtree(staging, ignore_errors=True)
    return BROWSER_DIR / "node_modules"


class Api:
    def __init__(self, url: str, key: str) -> None:
        self.http = httpx.AsyncClient(base_url=url, headers=bearer(key), timeout=30)

    async def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        body = (await self.http.post("/graphql", json={"query": query, "variables": variables})).json()
        assert "errors" not in body, body
        return body["data"]


def month_ranges(now: datetime) -> list[tuple[str, datetime, datetime]]:
    """The page's twelve months: (YYYY-MM, start, end), the current one ending now."""
    starts = []
    for back in range(11, -2, -1):
        y, m = divmod(now.year * 12 + now.month - 1 - back, 12)
        starts.append(datetime(y, m + 1, 1, tzinfo=UTC))
    return [(s.strftime("%Y-%m"), s, now if i == 11 else starts[i + 1]) for i, s in enumerate(starts[:-1])]


async def test_the_dashboard_draws_every_chart_from_the_api_in_chromium(database_url, settings, db, tmp_path):
    assert Path(CHROMIUM).is_file(), "Debian's chromium is needed: `make browser-tools` installs it"
    modules = playwright_modules()
    dashboard.fetch(LIBRARY_CACHE)
    shutil.copytree(LIBRARY_CACHE, tmp_path / "dashboard")

    await seed_demo(settings, count=60)
    key, _ = await make_key(db, settings, role="ADMIN", email="analyst-key@example.com")
    async with db.writer() as session, session.begin():
        await auth.create_user(session, actor=SYSTEM, email="analyst@example.com", role="ADMIN", password=PASSWORD)

    async with servers(database_url, tmp_path) as (url,):
        api = Api(url, key)
        for query, name in PREPARE:
            answer = await api(query, d=(date.today() - timedelta(days=120)).isoformat())
            assert "errors" not in answer[name] or answer[name]["errors"] == [], answer
        expected = await api(SUMMARY)
        customers, after = [], None
        while True:
            page = (await api(CUSTOMERS, after=after))["customers"]
            customers += [e["node"] for e in page["edges"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]

        screenshot = tmp_path / "dashboard.png"
        result = subprocess.run(
            ["node", str(BROWSER_SOURCE / "dashboard.js"), url, "analyst@example.com", PASSWORD, str(screenshot)],
            env={**os.environ, "NODE_PATH": str(modules), "CHROMIUM": CHROMIUM}, capture_output=True, text=True, timeout=60,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        page_seen = json.loads(result.stdout)
        now = datetime.now(UTC)
        support = {label: (await api(SUPPORT, **{"from": start.isoformat(), "to": end.isoformat()}))["supportStats"]
                   for label, start, end in month_ranges(now)}

    print(f"dashboard screenshot: {screenshot}")
    assert screenshot.is_file() and screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 50_000

    # Signed in through the form, with a session token; nothing went wrong on the way.
    assert page_seen["signInShown"] and page_seen["tokenKept"] == "crm_ses_"
    assert page_seen["state"] == "ready", page_seen["status"]
    assert page_seen["consoleErrors"] == [] and page_seen["pageErrors"] == [], page_seen
    assert page_seen["failedRequests"] == [] and page_seen["cspViolations"] == [], page_seen
    assert page_seen["headers"]["content-security-policy"] == dashboard.CONTENT_SECURITY_POLICY
    charts = page_seen["charts"]
    for name, chart in charts.items():
        assert chart["state"] == "ready" and chart["canvas"] >= 1, (name, chart)

    # The funnel: the stages but the lost ones, in order, with their counts.
    stages = [(s["stage"]["name"], s["count"]) for s in expected["pipelineSummary"]["stages"] if s["stage"]["kind"] != "LOST"]
    funnel = charts["chart-funnel"]["series"][0]["data"]
    assert [(d["name"], d["value"]) for d in funnel] == stages and sum(c for _, c in stages) > 0
    # The forecast: one bar per expected-close month, the amounts and weighted amounts the API gives.
    months = expected["pipelineSummary"]["months"]
    forecast = charts["chart-forecast"]
    assert forecast["xAxis"][0] == [m["month"] for m in months] and months
    assert forecast["series"][0]["data"] == [float(m["amount"]["amount"]) for m in months]
    assert forecast["series"][1]["data"] == [float(m["weightedAmount"]["amount"]) for m in months]

    # The RFM heat map: all 25 cells, each with the grid's customer count (0 where the grid has none).
    grid = {(c["recencyScore"], c["frequencyScore"]): c["customers"] for c in expected["rfmAnalysis"]["grid"]}
    cells = {(r + 1, f + 1): n for r, f, n, _ in charts["chart-rfm"]["series"][0]["data"]}
    assert len(cells) == 25 and cells == {(r, f): grid.get((r, f), 0) for r in range(1, 6) for f in range(1, 6)}
    assert sum(cells.values()) == expected["rfmAnalysis"]["run"]["customers"] > 0

    # The Pareto curve: one point per customer with revenue (after the origin), ending at 100%, and
    # the share of the top 20% the one valueConcentration computes.
    revenue = sorted((float(c["rfm"]["monetary"]["amount"]) for c in customers if c["rfm"] and c["rfm"]["monetary"]
                      and float(c["rfm"]["monetary"]["amount"]) > 0), reverse=True)
    curve = charts["chart-pareto"]["series"][0]["data"]
    assert len(curve) == len(revenue) + 1 and curve[0] == [0, 0] and math.isclose(curve[-1][1], 100)
    assert math.isclose(float(charts["chart-pareto"]["total"]), round(sum(revenue), 2), abs_tol=0.01)
    top20 = curve[math.ceil(len(revenue) * 0.2)][1]
    assert abs(top20 - 100 * float(expected["valueConcentration"]["top20PercentShare"])) < 0.01

    # The CLV histogram: every valued customer in one band, the bands adding up to the model's count.
    values = [float(c["lifetimeValue"]["clv"]["amount"]) for c in customers if c["lifetimeValue"]]
    bars = charts["chart-clv"]["series"][0]["data"]
    assert sum(bars) == len(values) == expected["customerValueModel"]["customers"] > 0 and max(bars) < len(values)
    assert math.isclose(float(charts["chart-clv"]["total"]), round(sum(values), 2), abs_tol=0.01)

    # Support: twelve months, each point the month's supportStats; some months have figures.
    chart = charts["chart-support"]
    assert chart["xAxis"][0] == list(support)
    for series, key in zip(chart["series"], ("firstResponseCompliance", "resolutionCompliance", "csat"), strict=True):
        assert series["data"] == [s[key] for s in support.values()], key
    assert any(s["csat"] is not None for s in support.values())
    assert any(s["firstResponseCompliance"] is not None for s in support.values())

    # The churn list: the API's first 20 risks, in its order.
    risks = expected["churnRisks"]
    names = [e["node"]["customer"]["displayName"] for e in risks["edges"]]
    table = page_seen["churn"]
    assert table["state"] == "ready" and int(table["total"]) == risks["totalCount"] > 0
    assert [row[0] for row in table["rows"]] == names


async def test_the_page_pins_its_chart_library_and_says_when_it_is_missing(settings, tmp_path):
    """No browser: the page's policy, the library's tag and hash, and a server without the file
    (the dashboard's routes alone; the test above has them in the whole app)."""
    import dataclasses

    from starlette.applications import Starlette

    from crm_graph.testing.client import asgi_client

    dashboard.fetch(LIBRARY_CACHE)
    package, version, path, integrity = dashboard.CHART_LIBRARY
    src = f"/dashboard/lib/{package}@{version}/{path}"

    without = Starlette(routes=dashboard.routes(dataclasses.replace(settings, data_dir=tmp_path / "empty")))
    async with asgi_client(without) as http:
        page = await http.get("/dashboard")
        assert page.status_code == 200 and src not in page.text and '<meta name="chart-library" content="missing">' in page.text
        assert (await http.get(src)).status_code == 404

    shutil.copytree(LIBRARY_CACHE, tmp_path / "full" / "dashboard")
    with_library = Starlette(routes=dashboard.routes(dataclasses.replace(settings, data_dir=tmp_path / "full")))
    async with asgi_client(with_library) as http:
        page = await http.get("/dashboard")
        assert page.headers["content-security-policy"] == dashboard.CONTENT_SECURITY_POLICY
        assert "'unsafe-inline'" not in page.headers["content-security-policy"] and "<script>" not in page.text
        assert f'<script src="{src}" integrity="{integrity}" crossorigin="anonymous"></script>' in page.text
        library = await http.get(src)
        assert library.status_code == 200 and dashboard.sri(library.content) == integrity
        module = await http.get("/dashboard/static/dashboard.js")
        assert module.status_code == 200 and "javascript" in module.headers["content-type"]
