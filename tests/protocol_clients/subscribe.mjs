// One subscription through a reference client, as JSON lines on stdout (the tests read them).
//   node subscribe.mjs <ws|sse> <url> <token> <query> [variables-json]
// Lines: {"kind":"connected"} (ws), {"kind":"next","payload":…}, {"kind":"error","errors":…},
//        {"kind":"closed","code":…,"reason":…}, {"kind":"complete"}. Runs until killed or completed.
import { createClient as createWsClient } from 'graphql-ws';
import { createClient as createSseClient } from 'graphql-sse';
import WebSocket from 'ws';

const [mode, url, token, query, variables = '{}'] = process.argv.slice(2);
const emit = (line) => process.stdout.write(JSON.stringify(line) + '\n');
const authorization = token ? `Bearer ${token}` : undefined;

const client = mode === 'ws'
  ? createWsClient({
      url, webSocketImpl: WebSocket, retryAttempts: 0, lazy: false,
      connectionParams: authorization ? { Authorization: authorization } : {},
      on: {
        connected: () => emit({ kind: 'connected' }),
        closed: (event) => emit({ kind: 'closed', code: event.code, reason: String(event.reason || '') }),
      },
    })
  : createSseClient({
      url, singleConnection: false, retryAttempts: 0,
      headers: authorization ? { Authorization: authorization } : {},
    });

client.subscribe({ query, variables: JSON.parse(variables) }, {
  next: (payload) => emit({ kind: 'next', payload }),
  error: (error) => {
    const errors = Array.isArray(error) ? error
      : { code: error?.code, reason: String(error?.reason ?? error?.message ?? error) };
    emit({ kind: 'error', errors });
    process.exit(0);
  },
  complete: () => { emit({ kind: 'complete' }); process.exit(0); },
});
