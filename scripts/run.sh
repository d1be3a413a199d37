#!/bin/sh
# Runs a TypeScript entry point of this repository with a suitable Node.js, installing the npm
# dependencies first when they are missing or stale. The npm scripts go through here, so `npm test`
# and `npm run demo` work right after cloning, whatever Node.js the machine has.
set -eu
. "$(dirname "$0")/install.sh"
exec node "$@"
