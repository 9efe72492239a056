#!/usr/bin/env bash
# npm start: build, then serve the tracker on http://127.0.0.1:${PORT:-8787}
# with Durable Objects and KV persisted under .wrangler/.
# Extra arguments go to `wrangler dev`, e.g. npm start -- --var INTERVAL:60
source "$(dirname "$0")/env.sh"
bash scripts/build.sh
# Private mode's D1 schema (harmless in public mode): apply pending migrations.
node_modules/.bin/wrangler d1 migrations apply DB --local --persist-to .wrangler/state < /dev/null >&2
exec node_modules/.bin/wrangler dev --ip 127.0.0.1 --port "${PORT:-8787}" --persist-to .wrangler/state "$@"
