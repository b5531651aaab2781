#!/usr/bin/env bash
# conftest, to check that the example policies give the same verdicts under
# conftest as under `lepton plan -policy` (examples/policies_test.go). It is a
# Go module: installed with go install when missing. Prints only export lines.
set -euo pipefail
want=v0.71.0
bin="$(go env GOPATH)/bin/conftest"
if ! [ -x "$bin" ] || ! go version -m "$bin" 2>/dev/null | grep -q "conftest[[:space:]]*$want"; then
  GOFLAGS= go install "github.com/open-policy-agent/conftest@$want" >&2
fi
echo "export LEPTON_CONFTEST=$bin"
