#!/usr/bin/env bash
# Builds lepton and runs the core benchmark (see bench/core/main.go): plan from
# empty, apply from empty and a no-op plan of 1,000 and 10,000 inline
# datasets, with wall time, CPU time and peak RSS medians in a Markdown table.
#
#   bench/core/run.sh                      # 1,000 and 10,000, 5 runs each
#   RUNS=3 SIZES=1000 bench/core/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
go build -o "$work/lepton" ./cmd/lepton
go build -o "$work/bench-core" ./bench/core
"$work/bench-core" -bin "$work/lepton" -sizes "${SIZES:-1000,10000}" -runs "${RUNS:-5}" -work "$work"
