#!/usr/bin/env bash
# Installs Chromium from Debian's packages (if missing) for the browser tests
# of `lepton ui` (cmd/lepton/ui_e2e_test.go drives it headless with chromedp)
# and prints the environment they read:
#   eval "$(.ci/setup-chromium.sh)"
# Nothing is started here: each test starts its own headless browser with a
# fresh profile. Everything except the export line goes to stderr.
set -euo pipefail
log() { echo "setup-chromium: $*" >&2; }

if ! command -v chromium >/dev/null 2>&1; then
  log "installing chromium from apt"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  # fonts-liberation: text in pages and screenshots needs a font.
  apt-get install -y -qq --no-install-recommends chromium fonts-liberation >&2
fi
BIN="$(command -v chromium)"
"$BIN" --version >&2 || { log "chromium does not run"; exit 1; }
echo "export LEPTON_CHROMIUM=$BIN"
