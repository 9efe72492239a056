#!/usr/bin/env bash
# npm start: build, then serve the tracker on http://127.0.0.1:${PORT:-8787}
# with Durable Objects and KV persisted under .wrangler/.
# Extra arguments go to `wrangler dev`, e.g. npm start -- --var INTERVAL:60
source "$(dirname "$0")/env.sh"
bash scripts/build.sh
exec node_modules/.bin/wrangler dev --ip 127.0.0.1 --port "${PORT:-8787}" --persist-to .wrangler/state "$@"
