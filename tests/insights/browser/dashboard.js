// Opens /dashboard in headless Chromium, signs in through the page's form, waits for the charts
// and prints one JSON object: console errors, page errors, failed requests, CSP violations, what
// each chart element says it drew and what the chart library holds, and the screenshot's path.
//
// usage: node dashboard.js URL EMAIL PASSWORD SCREENSHOT   (NODE_PATH: where playwright-core is)
const { chromium } = require("playwright-core");

const [url, email, password, screenshot] = process.argv.slice(2);

(async () => {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
  const out = { consoleErrors: [], pageErrors: [], failedRequests: [], cspViolations: [] };
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1700 } });
    page.on("console", (msg) => { if (msg.type() === "error") out.consoleErrors.push(msg.text()); });
    page.on("pageerror", (error) => out.pageErrors.push(String(error)));
    page.on("requestfailed", (request) => out.failedRequests.push(`${request.url()}: ${request.failure()?.errorText}`));
    page.on("response", (response) => {
      if (response.status() >= 400) out.failedRequests.push(`${response.url()}: ${response.status()}`);
    });
    const response = await page.goto(`${url}/dashboard`);
    out.headers = response.headers();
    await page.evaluate(() => {
      window.cspViolations = [];
      document.addEventListener("securitypolicyviolation", (e) => window.cspViolations.push(`${e.violatedDirective} ${e.blockedURI}`));
    });
    out.signInShown = await page.isVisible("#login-form");
    await page.fill("#login-form input[name=email]", email);
    await page.fill("#login-form input[name=password]", password);
    await page.click("#login-form button[type=submit]");
    await page.waitForSelector("body[data-dashboard=ready], body[data-dashboard=error]", { timeout: 20000 });
    out.state = await page.getAttribute("body", "data-dashboard");
    out.status = await page.textContent("#status");
    out.tokenKept = await page.evaluate(() => (sessionStorage.getItem("crm-graph.dashboard.token") || "").slice(0, 8));
    out.charts = await page.evaluate(() => {
      const result = {};
      for (const el of document.querySelectorAll(".chart")) {
        const chart = window.echarts.getInstanceByDom(el);
        const option = chart ? chart.getOption() : null;
        result[el.id] = {
          ...el.dataset,
          note: el.parentElement.querySelector(".note").textContent,
          canvas: el.querySelectorAll("canvas").length,
          series: option ? option.series.map((s) => ({ type: s.type, data: s.data })) : null,
          xAxis: option && option.xAxis ? option.xAxis.map((a) => a.data || null) : null,
        };
      }
      return result;
    });
    out.churn = await page.evaluate(() => {
      const table = document.getElementById("churn-table");
      return {
        ...table.dataset,
        rows: [...table.querySelectorAll("tbody tr")].map((tr) => [...tr.children].map((td) => td.textContent)),
      };
    });
    out.cspViolations = await page.evaluate(() => window.cspViolations);
    await page.screenshot({ path: screenshot, fullPage: true });
    out.screenshot = screenshot;
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(out));
})().catch((error) => {
  process.stderr.write(String(error.stack || error));
  process.exit(1);
});
