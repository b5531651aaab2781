#!/usr/bin/env bash
# curl, which the sandbox's nodes use in their user data (the agent's
# bootstrap fetches with curl, or wget) and cmd/lepton-sandbox's end-to-end
# test uses to query the nodes' metadata servers. Prints only export lines.
set -euo pipefail
if ! command -v curl >/dev/null 2>&1; then
  { apt-get update && apt-get install -y curl; } >&2
fi
echo "export LEPTON_CURL=$(command -v curl)"
