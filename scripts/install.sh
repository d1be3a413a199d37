# Sourced, not run: makes sure a suitable Node.js is first on PATH (scripts/ensure-node.sh) and the npm
# dependencies are installed and match package-lock.json. Set SPILLWAY_CLEAN_INSTALL=1 to always `npm ci`.
spillway_root=$(cd "$(dirname "$0")/.." && pwd)
. "$spillway_root/scripts/ensure-node.sh"
spillway_stamp="$spillway_root/node_modules/.spillway-installed"
spillway_wanted=$(cksum < "$spillway_root/package-lock.json")
if [ "${SPILLWAY_CLEAN_INSTALL:-0}" = 1 ] || [ ! -f "$spillway_stamp" ] || [ "$(cat "$spillway_stamp")" != "$spillway_wanted" ]; then
  echo "spillway: installing npm dependencies (npm ci) with Node $(node --version)" >&2
  (cd "$spillway_root" && npm ci --no-audit --no-fund --loglevel=error >&2)
  echo "$spillway_wanted" > "$spillway_stamp"
fi
