#!/usr/bin/env bash
# Install the Debian packages the demo and tests need, only if they are missing.
# Usage: ensure-system-deps.sh [mosquitto] [chromium] [nodejs] [shellcheck]
set -euo pipefail

need=()
for what in "$@"; do
  case "$what" in
    mosquitto) [ -x /usr/sbin/mosquitto ] || command -v mosquitto >/dev/null 2>&1 || need+=(mosquitto) ;;
    chromium)  [ -x /usr/bin/chromium ] || need+=(chromium) ;;
    nodejs)    { command -v node && command -v npm; } >/dev/null 2>&1 || need+=(nodejs npm) ;;
    shellcheck) command -v shellcheck >/dev/null 2>&1 || need+=(shellcheck) ;;
    *) echo "ensure-system-deps: unknown dependency '$what'" >&2; exit 2 ;;
  esac
done
[ ${#need[@]} -eq 0 ] && exit 0

echo "installing missing system packages: ${need[*]}" >&2
if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif command -v sudo >/dev/null 2>&1; then
  SUDO="sudo"
else
  echo "error: ${need[*]} missing and not root (no sudo): install them with apt-get install ${need[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
