#!/usr/bin/env bash
# Installs Azurite (Azure Storage emulator) from the npm registry if missing,
# starts its blob service on 127.0.0.1 in the background and prints the
# environment the tests read:
#   eval "$(.ci/setup-azurite.sh)"
# Idempotent: a second run finds it listening and prints the same lines.
# Everything except the export lines goes to stderr.
set -euo pipefail

PORT="${LEPTON_AZURITE_PORT:-10000}"
DIR="${LEPTON_AZURITE_DIR:-/tmp/lepton-azurite}"
PREFIX="${LEPTON_AZURITE_PREFIX:-/opt/lepton-azurite}"
log() { echo "setup-azurite: $*" >&2; }

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

if ! command -v npm >/dev/null 2>&1; then
  log "installing nodejs and npm from apt"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq nodejs npm >&2
fi

BIN="$PREFIX/node_modules/.bin/azurite-blob"
if [ ! -x "$BIN" ]; then
  log "installing azurite into $PREFIX from npm"
  mkdir -p "$PREFIX"
  npm install --prefix "$PREFIX" --no-audit --no-fund --loglevel=error azurite@3 >&2
fi

if ! listening; then
  mkdir -p "$DIR"
  log "starting azurite-blob on 127.0.0.1:$PORT"
  nohup setsid "$BIN" --blobHost 127.0.0.1 --blobPort "$PORT" --location "$DIR" \
    --skipApiVersionCheck --loose >"$DIR/azurite.log" 2>&1 </dev/null &
  for _ in $(seq 1 60); do
    listening && break
    sleep 1
  done
  listening || { log "azurite did not start; see $DIR/azurite.log"; cat "$DIR/azurite.log" >&2; exit 1; }
fi

# The emulator's well-known development account (public, documented by Microsoft).
KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
echo "export LEPTON_TEST_AZURITE_CONNECTION_STRING='DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=$KEY;BlobEndpoint=http://127.0.0.1:$PORT/devstoreaccount1;'"
