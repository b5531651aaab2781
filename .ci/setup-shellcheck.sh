#!/usr/bin/env bash
# shellcheck, which actionlint runs on the run: scripts of examples/ci's
# workflow (examples/ci/workflow_test.go). Prints only export lines.
set -euo pipefail
if ! command -v shellcheck >/dev/null 2>&1; then
  { apt-get update && apt-get install -y shellcheck; } >&2
fi
echo "export LEPTON_SHELLCHECK=$(command -v shellcheck)"
