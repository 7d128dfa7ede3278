#!/usr/bin/env bash
# Install the interop rig's npm packages (hil/interop, from its package-lock.json) if they are missing.
# Node.js and npm come from Debian (ensure-system-deps.sh nodejs) when the machine has none.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
rig="$here/../interop"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  "$here/ensure-system-deps.sh" nodejs
fi
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)'; then
  echo "error: hil/interop needs Node.js 18 or newer, found $(node --version)" >&2
  exit 1
fi

# npm ci leaves node_modules/.package-lock.json; reinstall when it is missing or the lockfile changed.
stamp="$rig/node_modules/.package-lock.json"
if [ -f "$stamp" ] && [ ! "$rig/package-lock.json" -nt "$stamp" ]; then
  exit 0
fi
echo "installing hil/interop npm packages (npm ci)" >&2
cd "$rig"
npm ci --no-audit --no-fund --loglevel=error
