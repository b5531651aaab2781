#!/usr/bin/env bash
# Installs Prometheus and promtool from Debian's packages (if missing) for
# examples/monitoring_test.go and prints their paths:
#   eval "$(.ci/setup-prometheus.sh)"
# The package's own service is not left running: the test starts its own
# Prometheus on a loopback port with a temporary storage directory. Everything
# except the export lines goes to stderr.
set -euo pipefail
log() { echo "setup-prometheus: $*" >&2; }

if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
  log "installing prometheus from apt"
  export DEBIAN_FRONTEND=noninteractive
  # Keep the package's service from starting on install (a policy-rc.d that
  # says no), unless the machine already has such a policy.
  made_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  apt-get update -qq >&2
  # No recommends: they would add (and start) the node exporter.
  apt-get install -y -qq --no-install-recommends prometheus >&2
  if [ -n "$made_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
fi
# Stop the system service if something started it anyway (a machine with
# systemd as init): only the test's own Prometheus may run.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
  log "stopping the prometheus system service"
  systemctl stop prometheus >&2 || true
  systemctl disable prometheus >&2 2>/dev/null || true
elif command -v service >/dev/null 2>&1 && service prometheus status >/dev/null 2>&1; then
  log "stopping the prometheus system service"
  service prometheus stop >&2 || true
fi
PROM="$(command -v prometheus)"
PROMTOOL="$(command -v promtool)"
"$PROM" --version >&2
echo "export LEPTON_PROMETHEUS=$PROM"
echo "export LEPTON_PROMTOOL=$PROMTOOL"
