#!/usr/bin/env bash
# Make sure Debian's Chromium and its WebDriver are installed, for the browser tests of the web
# page (tests/server/test_server_page.py). Installs `chromium chromium-driver` with apt-get when
# either is missing (as root, or through passwordless sudo); prints one line either way.
set -euo pipefail

CHROMIUM=/usr/bin/chromium
DRIVER=/usr/bin/chromedriver

version() {
    # Debian's launcher script writes a harmless warning to stderr on some machines.
    "$DRIVER" --version 2>/dev/null | head -n 1
}

if [[ -x "$CHROMIUM" && -x "$DRIVER" ]]; then
    echo "ensure_chromium: present ($(version))"
    exit 0
fi

if [[ "$(id -u)" -eq 0 ]]; then
    SUDO=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
else
    echo "ensure_chromium: $CHROMIUM or $DRIVER missing; install them: apt-get install chromium chromium-driver" >&2
    exit 1
fi

LOG="$(mktemp "${TMPDIR:-/tmp}/ensure-chromium.XXXXXX")"
trap 'rm -f "$LOG"' EXIT
export DEBIAN_FRONTEND=noninteractive
install() {
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends chromium chromium-driver >>"$LOG" 2>&1
}
# Package lists may be missing or stale (a fresh container): update once, then try again.
if ! install && ! { "${SUDO[@]}" apt-get update -qq >>"$LOG" 2>&1 && install; }; then
    echo "ensure_chromium: apt-get could not install chromium chromium-driver:" >&2
    tail -n 20 "$LOG" >&2
    exit 1
fi
echo "ensure_chromium: installed ($(version))"
