// The dashboard: reads the GraphQL API with the visitor's credentials and draws the charts.
//
// Credentials: a session token from the `login` mutation, or an API key pasted into the form,
// kept in sessionStorage (gone when the tab closes) and sent as `Authorization: Bearer ...`.
// Every figure comes from the API; what the API gives as lists (customers' revenue, their
// lifetime values) is aggregated here into the Pareto curve and the CLV histogram.
//
// Each chart's element gets data attributes saying what it drew: data-state (ready, empty,
// denied, error), data-points (the number of data points) and data-total (the sum they show).

const TOKEN = "crm-graph.dashboard.token";
const CUSTOMER_PAGES = 50; // 100 customers a page: the curve and histogram cover at most 5,000
const MONTHS = 12;
const echarts = window.echarts;

const $ = (id) => document.getElementById(id);
const charts = [];

class ApiError extends Error {
  constructor(message, code) {
    super(message);
    this.code = code;
  }
}

async function gql(query, variables = {}, token = sessionStorage.getItem(TOKEN)) {
  const headers = { "Content-Type": "application/json", Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch("/graphql", { method: "POST", headers, body: JSON.stringify({ query, variables }) });
  let body;
  try {
    body = await response.json();
  } catch {
    throw new ApiError(`The API answered ${response.status} without JSON.`, "BAD_RESPONSE");
  }
  const errors = body.errors || [];
  if (errors.some((e) => e.extensions?.code === "UNAUTHENTICATED")) {
    throw new ApiError("Your sign-in is no longer valid.", "UNAUTHENTICATED");
  }
  if (!body.data) {
    const first = errors[0] || {};
    throw new ApiError(first.message || `The API answered ${response.status}.`, first.extensions?.code || "ERROR");
  }
  return { data: body.data, errors };
}

// The error of one root field (by alias), or undefined.
const fieldError = (errors, name) => errors.find((e) => e.path && e.path[0] === name);

const amount = (money) => (money ? Number(money.amount) : 0);
const fmt = (n, digits = 0) => n.toLocaleString("en", { maximumFractionDigits: digits, minimumFractionDigits: digits });
const money = (value, currency) => `${fmt(value)} ${currency || ""}`.trim();

function mark(id, state, points = 0, total = 0) {
  const el = $(id);
  el.dataset.state = state;
  el.dataset.points = String(points);
  el.dataset.total = String(total);
}

function draw(id, option, points, total) {
  const chart = echarts.init($(id));
  chart.setOption({ animation: false, ...option });
  charts.push(chart);
  mark(id, points ? "ready" : "empty", points, total);
}

function unavailable(chartId, noteId, error) {
  const denied = error.extensions?.code === "FORBIDDEN";
  $(noteId).textContent = denied ? `Not shown: ${error.message}` : `Could not load: ${error.message}`;
  mark(chartId, denied ? "denied" : "error");
}

// --- sign-in -------------------------------------------------------------------------------------

const LOGIN = `mutation($email: String!, $password: String!) { login(email: $email, password: $password) {
  token errors { code message } } }`;
const ME = "{ me { kind role user { email name } apiKey { name } } }";

function showSignIn(message = "") {
  $("charts").hidden = true;
  $("viewer").hidden = true;
  $("sign-in").hidden = false;
  $("sign-in-error").textContent = message;
}

async function signIn(token) {
  const { data } = await gql(ME, {}, token);
  sessionStorage.setItem(TOKEN, token);
  const me = data.me;
  const who = me.user ? me.user.name || me.user.email : me.apiKey ? `key "${me.apiKey.name}"` : me.kind;
  $("viewer-name").textContent = `${who} (${me.role || me.kind})`;
  $("viewer").hidden = false;
  $("sign-in").hidden = true;
  $("charts").hidden = false;
  await loadAll();
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  try {
    const { data } = await gql(LOGIN, { email: form.get("email"), password: form.get("password") }, null);
    const result = data.login;
    if (!result.token) {
      showSignIn(result.errors.map((e) => e.message).join(" ") || "Sign-in failed.");
      return;
    }
    event.target.reset();
    await signIn(result.token);
  } catch (error) {
    showSignIn(error.message);
  }
});

$("key-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const key = new FormData(event.target).get("key").trim();
  try {
    await signIn(key);
    event.target.reset();
  } catch (error) {
    sessionStorage.removeItem(TOKEN);
    showSignIn(error.code === "UNAUTHENTICATED" ? "The server does not accept this key." : error.message);
  }
});

$("sign-out").addEventListener("click", async () => {
  const token = sessionStorage.getItem(TOKEN);
  sessionStorage.removeItem(TOKEN);
  if (token && token.startsWith("crm_ses_")) {
    try {
      await gql("mutation { logout { errors { code } } }", {}, token);
    } catch {
      // the session is forgotten here either way
    }
  }
  for (const chart of charts.splice(0)) chart.dispose();
  showSignIn();
});

window.addEventListener("resize", () => charts.forEach((chart) => chart.resize()));

// --- the figures ---------------------------------------------------------------------------------

// One request per panel: a field the visitor may not read fails its own panel only (a refused
// non-null field would null the whole answer of a shared request).
const PIPELINE = `{ pipelineSummary { pipeline { name } currency
  stages { stage { name kind position } count amount { amount currency } weightedAmount { amount } }
  months { month count amount { amount currency } weightedAmount { amount } } } }`;
const RFM = `{ rfmAnalysis { run { asOf windowDays currency customers revenue { amount currency } }
  grid { recencyScore frequencyScore customers averageMonetary { amount currency } } } }`;
const CONCENTRATION = "{ valueConcentration { customers currency top20PercentShare } }";
const VALUE_MODEL = "{ customerValueModel { asOf currency customers horizonDays discountRate } }";
const CHURN = `{ churnRisks(first: 20) { totalCount edges { node {
  customer { id displayName } daysSinceLastOrder probabilityAlive monetary { amount currency } clv { amount currency }
  recencyScore { before now } frequencyScore { before now } reasons } } } }`;

const CUSTOMERS = `query($after: String) { customers(first: 100, after: $after) {
  pageInfo { hasNextPage endCursor }
  edges { node { rfm { monetary { amount currency } } lifetimeValue { clv { amount currency } } } } } }`;

function monthStarts() {
  const now = new Date();
  const starts = [];
  for (let i = MONTHS - 1; i >= -1; i -= 1) starts.push(new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - i, 1)));
  return starts;
}

function supportQuery(starts) {
  const fields = starts.slice(0, -1).map((from, i) => {
    const to = i === starts.length - 2 ? new Date() : starts[i + 1];
    return `m${i}: supportStats(from: "${from.toISOString()}", to: "${to.toISOString()}") {
      firstResponseCompliance resolutionCompliance csat ratings }`;
  });
  return `{ ${fields.join("\n")} }`;
}

async function allCustomers() {
  const rows = [];
  let after = null;
  for (let page = 0; page < CUSTOMER_PAGES; page += 1) {
    const { data } = await gql(CUSTOMERS, { after });
    rows.push(...data.customers.edges.map((e) => e.node));
    if (!data.customers.pageInfo.hasNextPage) return { rows, complete: true };
    after = data.customers.pageInfo.endCursor;
  }
  return { rows, complete: false };
}

// The field's value, or the error that kept it (a GraphQL error of the field, or of the request).
async function field(query, name) {
  try {
    const { data, errors } = await gql(query);
    return { value: data[name], error: fieldError(errors, name) };
  } catch (error) {
    if (error.code === "UNAUTHENTICATED") throw error;
    return { value: null, error: { message: error.message, extensions: { code: error.code } } };
  }
}

async function loadAll() {
  document.body.dataset.dashboard = "loading";
  $("status").textContent = "Loading ...";
  try {
    const starts = monthStarts();
    const [pipe, grid, concentration, model, risks, support, customers] = await Promise.all([
      field(PIPELINE, "pipelineSummary"),
      field(RFM, "rfmAnalysis"),
      field(CONCENTRATION, "valueConcentration"),
      field(VALUE_MODEL, "customerValueModel"),
      field(CHURN, "churnRisks"),
      gql(supportQuery(starts)).then((r) => ({ ...r, starts }), (error) => {
        if (error.code === "UNAUTHENTICATED") throw error;
        return { error: { message: error.message, extensions: { code: error.code } } };
      }),
      allCustomers().catch((error) => {
        if (error.code === "UNAUTHENTICATED") throw error;
        return { error };
      }),
    ]);
    pipeline(pipe.value, pipe.error);
    rfm(grid.value, grid.error);
    pareto(customers, concentration.value);
    clv(customers, model.value, model.error);
    churn(risks.value, risks.error);
    supportChart(support);
    $("status").textContent = `As of ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC.`;
    document.body.dataset.dashboard = "ready";
  } catch (error) {
    if (error.code === "UNAUTHENTICATED") {
      sessionStorage.removeItem(TOKEN);
      showSignIn(error.message);
      return;
    }
    $("status").textContent = `The dashboard could not load: ${error.message}`;
    document.body.dataset.dashboard = "error";
  }
}

function pipeline(summary, error) {
  if (error || !summary) {
    if (error) {
      unavailable("chart-funnel", "funnel-note", error);
      unavailable("chart-forecast", "forecast-note", error);
    } else {
      $("funnel-note").textContent = $("forecast-note").textContent = "No pipeline yet.";
      mark("chart-funnel", "empty");
      mark("chart-forecast", "empty");
    }
    return;
  }
  const currency = summary.currency || "";
  const open = summary.stages.filter((s) => s.stage.kind !== "LOST").sort((a, b) => a.stage.position - b.stage.position);
  $("funnel-note").textContent = `${summary.pipeline.name}: opportunities in each stage (lost ones left out), amounts in ${currency}.`;
  draw("chart-funnel", {
    tooltip: { trigger: "item", formatter: (p) => `${p.name}: ${p.value} (${money(p.data.amount, currency)})` },
    series: [{
      type: "funnel", sort: "none", minSize: "12%", gap: 2, left: "10%", width: "80%",
      label: { position: "inside", formatter: (p) => `${p.name}: ${p.value}` },
      data: open.map((s) => ({ name: s.stage.name, value: s.count, amount: amount(s.amount) })),
    }],
  }, open.length, open.reduce((n, s) => n + s.count, 0));

  const months = summary.months;
  $("forecast-note").textContent = months.length
    ? `Open opportunities by expected close month, ${currency}: amount and probability-weighted amount.`
    : "No open opportunity has an expected close date.";
  draw("chart-forecast", {
    tooltip: { trigger: "axis" },
    legend: { top: 0 },
    grid: { left: 70, right: 20, top: 30, bottom: 30 },
    xAxis: { type: "category", data: months.map((m) => m.month) },
    yAxis: { type: "value" },
    series: [
      { name: "Amount", type: "bar", data: months.map((m) => amount(m.amount)) },
      { name: "Weighted", type: "bar", data: months.map((m) => amount(m.weightedAmount)) },
    ],
  }, months.length, months.reduce((n, m) => n + m.count, 0));
}

function rfm(analysis, error) {
  if (error || !analysis) {
    if (error) unavailable("chart-rfm", "rfm-note", error);
    else {
      $("rfm-note").textContent = "No customer has a counted order yet.";
      mark("chart-rfm", "empty");
    }
    return;
  }
  const run = analysis.run;
  const cells = [];
  for (let r = 1; r <= 5; r += 1) {
    for (let f = 1; f <= 5; f += 1) {
      const cell = analysis.grid.find((c) => c.recencyScore === r && c.frequencyScore === f);
      cells.push([r - 1, f - 1, cell ? cell.customers : 0, cell ? amount(cell.averageMonetary) : 0]);
    }
  }
  const largest = Math.max(1, ...cells.map((c) => c[2]));
  $("rfm-note").textContent = `${run.customers} customers scored on ${run.asOf} over ${run.windowDays} days (${run.currency}); `
    + "each cell: customers, 5 = best.";
  draw("chart-rfm", {
    tooltip: { formatter: (p) => `R ${p.value[0] + 1}, F ${p.value[1] + 1}: ${p.value[2]} customers, `
      + `average ${money(p.value[3], run.currency)}` },
    grid: { left: 70, right: 20, top: 10, bottom: 80 },
    xAxis: { type: "category", name: "Recency score", nameLocation: "middle", nameGap: 25, data: ["1", "2", "3", "4", "5"] },
    yAxis: { type: "category", name: "Frequency score", nameLocation: "middle", nameGap: 30, data: ["1", "2", "3", "4", "5"] },
    visualMap: { min: 0, max: largest, calculable: true, orient: "horizontal", left: "center", bottom: 0,
      dimension: 2, inRange: { color: ["#f0f4f8", "#2680c2", "#102a43"] } },
    series: [{ type: "heatmap", data: cells, label: { show: true, formatter: (p) => String(p.value[2]) } }],
  }, cells.filter((c) => c[2] > 0).length, cells.reduce((n, c) => n + c[2], 0));
}

function pareto(customers, concentration) {
  if (customers.error) {
    unavailable("chart-pareto", "pareto-note", { message: customers.error.message });
    return;
  }
  const values = customers.rows.map((c) => (c.rfm && c.rfm.monetary ? amount(c.rfm.monetary) : 0)).filter((v) => v > 0);
  values.sort((a, b) => b - a);
  const total = values.reduce((n, v) => n + v, 0);
  const points = [[0, 0]];
  let running = 0;
  values.forEach((v, i) => {
    running += v;
    points.push([(100 * (i + 1)) / values.length, (100 * running) / total]);
  });
  const top20 = values.slice(0, Math.ceil(values.length * 0.2)).reduce((n, v) => n + v, 0);
  const currency = customers.rows.find((c) => c.rfm && c.rfm.monetary)?.rfm.monetary.currency || "";
  $("pareto-note").textContent = values.length
    ? `${values.length} customers with revenue in the newest RFM run (${money(total, currency)}): the top 20% bring `
      + `${fmt((100 * top20) / total, 1)}%.${customers.complete ? "" : " Only the first 5,000 customers are drawn."}`
    : "No customer has revenue in the newest RFM run.";
  draw("chart-pareto", {
    tooltip: { trigger: "axis", formatter: (p) => `top ${fmt(p[0].value[0], 1)}% of customers: ${fmt(p[0].value[1], 1)}% of revenue` },
    grid: { left: 60, right: 20, top: 20, bottom: 45 },
    xAxis: { type: "value", min: 0, max: 100, name: "% of customers, largest first", nameLocation: "middle", nameGap: 28 },
    yAxis: { type: "value", min: 0, max: 100, name: "% of revenue" },
    series: [{
      type: "line", data: points, showSymbol: false, areaStyle: { opacity: 0.15 },
      markLine: { silent: true, symbol: "none", data: [{ yAxis: 80, name: "80%" }, { xAxis: 20, name: "20%" }] },
    }],
  }, values.length, Math.round(total * 100) / 100);
  if (concentration) $("chart-pareto").dataset.top20Api = String(concentration.top20PercentShare);
}

function clv(customers, model, error) {
  if (error) {
    unavailable("chart-clv", "clv-note", error);
    return;
  }
  if (!model) {
    $("clv-note").textContent = "No customer-value run yet: refreshCustomerValueModel fits one.";
    mark("chart-clv", "empty");
    return;
  }
  if (customers.error) {
    unavailable("chart-clv", "clv-note", { message: customers.error.message });
    return;
  }
  const values = customers.rows.filter((c) => c.lifetimeValue).map((c) => amount(c.lifetimeValue.clv));
  const bins = 12;
  const top = Math.max(...values, 0);
  const width = top > 0 ? top / bins : 1;
  const counts = new Array(bins).fill(0);
  for (const v of values) counts[Math.min(bins - 1, Math.floor(v / width))] += 1;
  const labels = counts.map((_, i) => `${fmt(i * width)}–${fmt((i + 1) * width)}`);
  const sum = values.reduce((n, v) => n + v, 0);
  $("clv-note").textContent = `${values.length} customers valued on ${model.asOf} (${model.currency}, `
    + `${model.horizonDays} days at ${fmt(model.discountRate * 100, 1)}% a year): customers per CLV band; `
    + `median ${fmt(median(values))}, total ${money(sum, model.currency)}.`;
  draw("chart-clv", {
    tooltip: { trigger: "axis" },
    grid: { left: 50, right: 20, top: 20, bottom: 70 },
    xAxis: { type: "category", data: labels, axisLabel: { rotate: 35 }, name: `CLV (${model.currency})`, nameLocation: "middle", nameGap: 55 },
    yAxis: { type: "value", name: "customers", minInterval: 1 },
    series: [{ name: "Customers", type: "bar", data: counts }],
  }, values.length, Math.round(sum * 100) / 100);
}

function median(values) {
  if (!values.length) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function churn(risks, error) {
  const table = $("churn-table");
  const body = table.querySelector("tbody");
  body.replaceChildren();
  if (error) {
    $("churn-note").textContent = `Not shown: ${error.message}`;
    table.dataset.state = error.extensions?.code === "FORBIDDEN" ? "denied" : "error";
    return;
  }
  const rows = risks.edges.map((e) => e.node);
  for (const risk of rows) {
    const tr = document.createElement("tr");
    tr.title = risk.reasons.join(" ");
    const cells = [
      risk.customer ? risk.customer.displayName : "(hidden)",
      money(amount(risk.monetary), risk.monetary.currency),
      money(amount(risk.clv), risk.clv.currency),
      `${fmt(risk.probabilityAlive * 100)}%`,
      String(risk.daysSinceLastOrder),
      `${risk.recencyScore.before} → ${risk.recencyScore.now}`,
      `${risk.frequencyScore.before} → ${risk.frequencyScore.now}`,
    ];
    cells.forEach((text, i) => {
      const td = document.createElement("td");
      td.textContent = text;
      if (i > 0) td.className = "num";
      tr.append(td);
    });
    body.append(tr);
  }
  $("churn-note").textContent = rows.length
    ? `${risks.totalCount} customers at risk as of the newest assessment; the first ${rows.length}. Hover a row for the reasons.`
    : "No churn risks in the newest assessment (assessChurnRisks compares the two latest RFM runs).";
  table.dataset.state = rows.length ? "ready" : "empty";
  table.dataset.points = String(rows.length);
  table.dataset.total = String(risks.totalCount);
}

function supportChart({ data, errors, starts, error: failed }) {
  const error = failed || errors.find((e) => e.path);
  if (error) {
    unavailable("chart-support", "support-note", error);
    return;
  }
  const months = starts.slice(0, -1).map((d) => d.toISOString().slice(0, 7));
  const stats = months.map((_, i) => data[`m${i}`]);
  const series = (key) => stats.map((s) => (s[key] === null ? null : s[key]));
  const ratings = stats.reduce((n, s) => n + s.ratings, 0);
  const measured = stats.filter((s) => s.firstResponseCompliance !== null || s.resolutionCompliance !== null || s.csat !== null);
  $("support-note").textContent = `Share of SLA targets met (first response, resolution) and CSAT (% of ratings of 4 or 5), `
    + `last ${MONTHS} months; ${ratings} ratings. Gaps: nothing decided or rated that month.`;
  draw("chart-support", {
    tooltip: { trigger: "axis", valueFormatter: (v) => (v === null || v === undefined ? "–" : `${fmt(v, 1)}%`) },
    legend: { top: 0 },
    grid: { left: 50, right: 20, top: 30, bottom: 30 },
    xAxis: { type: "category", data: months },
    yAxis: { type: "value", min: 0, max: 100, name: "%" },
    series: [
      { name: "First response in time", type: "line", connectNulls: false, data: series("firstResponseCompliance") },
      { name: "Resolution in time", type: "line", connectNulls: false, data: series("resolutionCompliance") },
      { name: "CSAT", type: "line", connectNulls: false, data: series("csat") },
    ],
  }, measured.length, ratings);
}

// --- start ---------------------------------------------------------------------------------------

if (!echarts) {
  $("sign-in").hidden = true;
  $("charts").hidden = false;
  $("status").textContent = "The chart library is missing on this server: run `python -m crm_graph.dashboard fetch` "
    + "(make serve does) and reload.";
  document.body.dataset.dashboard = "error";
} else if (sessionStorage.getItem(TOKEN)) {
  signIn(sessionStorage.getItem(TOKEN)).catch((error) => {
    sessionStorage.removeItem(TOKEN);
    showSignIn(error.code === "UNAUTHENTICATED" ? "" : error.message);
  });
} else {
  showSignIn();
}
