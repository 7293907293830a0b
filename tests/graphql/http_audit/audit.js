// Runs graphql-http's server audits against URL (argv[2]) and prints their results as JSON.
// The Authorization header (AUDIT_AUTHORIZATION) goes with every request, as a client's would.
'use strict';
const { serverAudits } = require('graphql-http');

const url = process.argv[2];
const authorization = process.env.AUDIT_AUTHORIZATION || '';

async function fetchWithKey(input, init = {}) {
  const headers = new Headers(init.headers || {});
  if (authorization) headers.set('authorization', authorization);
  return fetch(input, { ...init, headers });
}

async function main() {
  const results = [];
  for (const { id, name, fn } of serverAudits({ url, fetchFn: fetchWithKey })) {
    const result = await fn();
    const entry = { id, name, status: result.status };
    if (result.status !== 'ok') {
      entry.reason = result.reason;
      entry.httpStatus = result.response.status;
      try {
        entry.body = (await result.response.text()).slice(0, 2000);
      } catch (err) {
        entry.body = '(read by the audit)';
      }
    }
    results.push(entry);
  }
  process.stdout.write(JSON.stringify(results));
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(1);
});
