// graphql-http's server audits (the GraphQL-over-HTTP spec's MUST/SHOULD/MAY checks) against a running
// gateway. Usage: node audit.mjs <url> [authorization]. Prints one JSON array: {id, name, status, reason}.
// Every request carries the caller's token and a CSRF preflight header, as any real client of ours does.
import { serverAudits } from "graphql-http";

const [url, authorization] = process.argv.slice(2);
const extra = { "graphql-preflight": "1", ...(authorization ? { authorization } : {}) };

function fetchFn(input, init = {}) {
  const headers = new Headers(init.headers || {});
  for (const [name, value] of Object.entries(extra)) if (!headers.has(name)) headers.set(name, value);
  return fetch(input, { ...init, headers });
}

const results = [];
for (const audit of serverAudits({ url, fetchFn })) {
  const result = await audit.fn();
  results.push({ id: result.id, name: result.name, status: result.status, reason: result.reason ?? null });
}
process.stdout.write(JSON.stringify(results));
