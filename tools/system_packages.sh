#!/usr/bin/env bash
# Debian packages the test suite uses for real, installed where missing:
#   postgresql  - `kbuilder tune --storage postgresql://` tests start a real server (initdb, pg_ctl)
#   chromium    - the `kbuilder diagram` HTML view is tested in a real browser (Playwright drives
#                 /usr/bin/chromium; no browser is downloaded)
# Needs root (or sudo) and Debian's package mirror; does nothing when both are present.
set -euo pipefail
missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "installing Debian packages: ${missing[*]}" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
