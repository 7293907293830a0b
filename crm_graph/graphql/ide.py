"""GraphiQL as this server serves it: Strawberry's page, its files served locally, and CRM examples.

Strawberry's GraphiQL page loads React and GraphiQL from a CDN. On machines without internet
access (air-gapped offices, CI, this project's own test machines) that page stays blank, so
``make serve`` fetches the very same files from the npm registry once (``python -m
crm_graph.graphql.ide fetch``, into ``graphiql/`` in the data directory, ``CRM_DATA_DIR``) and
the server then serves them under ``/graphql/ide/``. The page keeps its subresource-integrity
hashes, so the browser still checks that every file is byte-for-byte the published one. Without
the local copy, the CDN is used.

The page is also adapted (``adapt``): its header editor starts with the signed-in dev key
(``with_headers``), and instead of Strawberry's welcome text it opens with tabs of example
operations on CRM data (``EXAMPLES``, ``with_examples``), unless a share link names a query.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from crm_graph.core import npm_assets

CDN_URL = re.compile(r"https://unpkg\.com/((?:@[^/@\s\"]+/)?[^/@\s\"]+)@([^/\s\"]+)/([^\"\s]+)")
ROUTE_PREFIX = "/graphql/ide"


def assets_dir(settings: Any) -> Path:
    """Where the fetched files live: ``graphiql/`` in the data directory."""
    return Path(settings.data_dir) / "graphiql"


def asset_route(settings: Any) -> Any:
    """The Starlette mount serving the fetched files (404s until they exist)."""
    from starlette.routing import Mount
    from starlette.staticfiles import StaticFiles

    return Mount(ROUTE_PREFIX, app=StaticFiles(directory=assets_dir(settings), check_dir=False), name="graphiql-assets")


def strawberry_page() -> str:
    import strawberry

    return (Path(strawberry.__file__).parent / "static" / "graphiql.html").read_text()


def required_assets(html: str) -> list[tuple[str, str, str]]:
    """(package, version, path inside the package) of every CDN file the page loads."""
    return sorted(set(CDN_URL.findall(html)))


def has_assets(root: Path, html: str) -> bool:
    return all(npm_assets.local_path(root, *asset).is_file() for asset in required_assets(html))


def local_page(html: str, root: Path) -> str:
    """The page with CDN URLs pointing at this server, if every file is present locally."""
    if not has_assets(root, html):
        return html
    return CDN_URL.sub(lambda m: f"{ROUTE_PREFIX}/{m.group(1)}@{m.group(2)}/{m.group(3)}", html)


# The tabs GraphiQL opens with (the first visit; later GraphiQL restores the visitor's own tabs
# from the browser's storage): (title, document, variables). The title becomes the document's
# first line, a comment; GraphiQL names each tab after the operation. Every document is checked
# against the schema and run on the demo data `make serve` seeds (tests/graphql/
# test_ide_examples.py). GraphiQL fills the first tab's variables editor from the address only,
# so the first example takes no variables.
EXAMPLES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("Who am I: the account and role of the key in the Headers tab below", """\
query Viewer {
  me {
    kind
    role
    viewAll
    user { email name team { name } }
  }
}
""", None),
    ("A page of customers: filter, order, and a cursor for the next page", """\
# Run it again with pageInfo.endCursor as "after" in the variables for the next page.
query CustomersPage($after: String) {
  customers(
    filter: { kind: { eq: PERSON }, consentStatus: { eq: OPTED_IN } }
    orderBy: [{ field: DISPLAY_NAME, direction: ASC }]
    first: 10
    after: $after
  ) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges {
      cursor
      node { id displayName primaryEmail country lifecycleStage tags }
    }
  }
}
""", {"after": None}),
    ("One customer with their deals and orders", """\
# The customer of the latest order won from a deal; customer(id: "...") reads one by its ID.
query CustomerWithDeals {
  orders(first: 1, filter: { opportunity: { isNull: false } }, orderBy: [{ field: ORDERED_AT, direction: DESC }]) {
    edges {
      node {
        number
        customer {
          id
          displayName
          stats { orderCount totalSpent { amount currency } lastOrderAt }
          opportunities(first: 5) {
            totalCount
            edges { node { title status stage { name } amount { amount currency } expectedCloseDate } }
          }
          orders(first: 5) {
            totalCount
            edges { node { number status paymentStatus orderedAt total { amount currency } } }
          }
        }
      }
    }
  }
}
""", None),
    ("Create a customer: invalid input comes back in errors, with the field at fault", """\
# Run it twice: the second time the address is taken, and errors names the input field at fault.
mutation CreateCustomer($input: CreateCustomerInput!) {
  createCustomer(input: $input) {
    customer { id displayName primaryEmail lifecycleStage version }
    errors { field code message }
  }
}
""", {"input": {"kind": "PERSON", "firstName": "Grace", "lastName": "Hopper",
                "emails": [{"address": "grace.hopper@example.com", "primary": True}],
                "country": "US", "tags": ["example"], "source": "WEB"}}),
    ("The sales pipeline: counts, amounts and the weighted forecast per stage", """\
query PipelineSummary {
  pipelineSummary {
    pipeline { name }
    currency
    openCount
    openAmount { amount currency }
    weightedForecast { amount currency }
    winRate
    stages { stage { name probability } count amount { amount } weightedAmount { amount } }
  }
}
""", None),
    ("RFM: the customer groups of the latest run, and the customers at risk", """\
query RfmAtRisk {
  rfmAnalysis {
    run { asOf customers revenue { amount currency } }
    groups { group customers shareOfRevenue }
  }
  customers(first: 10, filter: { rfm: { group: { in: [AT_RISK, CANNOT_LOSE] } } }) {
    totalCount
    edges { node { displayName rfm { group recencyDays frequency monetary { amount currency } } } }
  }
}
""", None),
]


def example_tabs() -> list[dict[str, str]]:
    """EXAMPLES as GraphiQL's ``defaultTabs``: {query, variables?}, the texts of its editors."""
    tabs = []
    for title, document, variables in EXAMPLES:
        tab = {"query": f"# {title}\n{document}"}
        if variables is not None:
            tab["variables"] = json.dumps(variables, indent=2)
        tabs.append(tab)
    return tabs


def _script_json(value: Any) -> str:
    """``value`` as a JavaScript literal that is safe inside an inline <script>."""
    return json.dumps(value).replace("<", "\\u003c")


def with_headers(html: str, headers: dict[str, str] | None) -> str:
    """The page with GraphiQL's header editor starting from ``headers`` (unless the URL says)."""
    if not headers:
        return html
    initial = _script_json(json.dumps(headers, indent=2))
    return html.replace("React.useState(parameters.headers)", f"React.useState(parameters.headers || {initial})")


# Anchors in Strawberry's page (strawberry/static/graphiql.html) that with_examples changes.
_SHARED_QUERY = "parameters.q || EXAMPLE_QUERY"
_COMPONENT = "function GraphiQLWithExplorer() {"
_PROPS = "fetcher: fetcher,"
_URL_VALUE = "decodeURIComponent(entry.slice(eq + 1))"


def with_examples(html: str, headers: dict[str, str] | None) -> str:
    """The page opening EXAMPLES as its tabs, each with ``headers`` in its header editor (as
    are new tabs), instead of Strawberry's welcome text.

    A share link, ``?q=<query>&variables=<JSON>`` (what the page writes into the address as the
    query is edited), opens that query instead: GraphiQL makes a tab of it (or goes to the
    stored tab holding it) and the examples stay out of the way. A ``+`` in the link's values is
    a space, as in any form-encoded query string. ``?query=`` works as ``?q=`` does (the view
    serves the page for a browser's GET carrying ``query``: GraphQLView.should_render_graphql_ide)."""
    if any(anchor not in html for anchor in (_SHARED_QUERY, _COMPONENT, _PROPS, _URL_VALUE)):
        return html  # not the page these anchors come from: left as it is
    header_text = json.dumps(headers, indent=2) if headers else None
    setup = (
        "// crm-graph: example tabs on a first visit; a share link (?q=, or ?query=) wins over them.\n"
        '      if (parameters.q === undefined && parameters.query !== undefined) {\n'
        "        parameters.q = parameters.query;\n"
        "        delete parameters.query;\n"
        "      }\n"
        f"      const crmHeaders = parameters.headers || {_script_json(header_text) if header_text else 'undefined'};\n"
        f"      const crmExamples = {_script_json(example_tabs())}.map((tab) => ({{ ...tab, headers: crmHeaders }}));\n"
        "      const crmDefaultTabs = parameters.q ? undefined : crmExamples;\n\n"
        f"      {_COMPONENT}"
    )
    html = html.replace(_URL_VALUE, 'decodeURIComponent(entry.slice(eq + 1).replace(/\\+/g, " "))', 1)
    html = html.replace(_COMPONENT, setup, 1)
    html = html.replace(_SHARED_QUERY, "parameters.q || undefined", 1)
    return html.replace(_PROPS, f"{_PROPS}\n          defaultTabs: crmDefaultTabs,\n          defaultHeaders: crmHeaders,", 1)


def adapt(html: str, headers: dict[str, str] | None) -> str:
    """Strawberry's page as this server serves it: the signed-in key in the headers, the examples."""
    return with_examples(with_headers(html, headers), headers)


def fetch(root: Path, html: str | None = None) -> list[Path]:
    """Download the page's packages from the npm registry (``npm pack``) and keep the files it loads."""
    missing = [a for a in required_assets(html or strawberry_page()) if not npm_assets.local_path(root, *a).is_file()]
    written: list[Path] = []
    for package, version in sorted({(p, v) for p, v, _ in missing}):
        paths = [path for p, v, path in missing if (p, v) == (package, version)]
        written += npm_assets.fetch(root, package, version, paths)
    return written


def main(argv: list[str]) -> int:
    return npm_assets.main(
        argv, module="crm_graph.graphql.ide", default_dir=assets_dir, default_help="graphiql/ in CRM_DATA_DIR",
        fetch=fetch, subject="GraphiQL assets", without="the page will load them from the CDN",
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv))
