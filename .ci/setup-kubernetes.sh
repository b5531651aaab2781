#!/usr/bin/env bash
# Starts a real single-node Kubernetes (v1.36.3) on this machine for lepton's
# Kubernetes tests, from Go modules and Debian packages only:
#   eval "$(bash .ci/setup-kubernetes.sh)"     # start (idempotent)
#   bash .ci/setup-kubernetes.sh stop          # stop and undo what start changed
#
# etcd, kube-apiserver (token auth, RBAC), kube-controller-manager,
# kube-scheduler, containerd (its own config, root, state and socket),
# kubelet, a bridge CNI, the cluster's DNS (tools/clusterdns, for pod and
# service names), and an OCI registry on 127.0.0.1 that containerd pulls
# from over plain HTTP. The binaries come from .ci/build-kubernetes.sh (cached
# by version). Everything lives under $LEPTON_K8S_DIR (default
# /tmp/lepton-k8s); what the kubelet and CNI change on the host (sysctls,
# /var/lib/kubelet, /var/lib/cni, /run/netns, cgroups, the bridge) is recorded
# at start and undone by stop.
#
# Only `export` lines go to stdout: KUBECONFIG and LEPTON_TEST_KUBECONFIG
# (the one tests read), KUBEBUILDER_ASSETS (for the
# envtest suites), LEPTON_TEST_REGISTRY (host:port of the registry) and
# LEPTON_TEST_BUSYBOX_IMAGE (a busybox image in it). The rest goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."

DIR="${LEPTON_K8S_DIR:-/tmp/lepton-k8s}"
ETCD_PORT="${LEPTON_K8S_ETCD_PORT:-12379}"
API_PORT="${LEPTON_K8S_API_PORT:-16443}"
REG_PORT="${LEPTON_K8S_REGISTRY_PORT:-15000}"
# Pods live on this bridge and subnet; the node's address is the bridge's,
# so the API server reaches the kubelet (logs, exec, port-forward) on an
# address this script created (a loopback node IP is refused by the kubelet).
BRIDGE=lepton0
SUBNET=10.244.0.0/24
NODE_IP=10.244.0.1
NODE=lepton-node
TOKEN_FILE="$DIR/admin.token"
SYSCTLS="kernel.panic kernel.panic_on_oops vm.overcommit_memory vm.panic_on_oom kernel.keys.root_maxkeys kernel.keys.root_maxbytes"
# Host paths the kubelet, containerd and CNI create; stop removes those that
# did not exist before start.
HOST_PATHS="/var/lib/kubelet /var/lib/cni /run/netns /var/log/pods /var/log/containers /etc/cni /run/containerd /opt/containerd"

log() { echo "setup-kubernetes: $*" >&2; }
die() { log "$*"; exit 1; }

pidof_component() { # name -> pid if running
  local f="$DIR/run/$1.pid"
  [ -f "$f" ] || return 1
  local pid; pid="$(cat "$f")"
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

start_component() { # name command... (logs to $DIR/logs/name.log)
  local name="$1"; shift
  if pidof_component "$name" >/dev/null; then
    return
  fi
  log "starting $name"
  setsid "$@" >"$DIR/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$DIR/run/$name.pid"
}

stop_component() {
  local name="$1" pid
  pid="$(pidof_component "$name")" || { rm -f "$DIR/run/$name.pid"; return 0; }
  log "stopping $name ($pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$DIR/run/$name.pid"
}

wait_for() { # what seconds command...
  local what="$1" secs="$2"; shift 2
  local start=$SECONDS
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS - start > secs)); then
      die "$what not ready after ${secs}s; see $DIR/logs"
    fi
    sleep 0.5
  done
  log "$what ready ($((SECONDS - start)) s)"
}

kc() { kubectl --kubeconfig "$DIR/kubeconfig" "$@"; }

print_env() {
  echo "export KUBECONFIG=$DIR/kubeconfig"
  # Tests read this one, never KUBECONFIG (a developer's may be a real cluster).
  echo "export LEPTON_TEST_KUBECONFIG=$DIR/kubeconfig"
  echo "export KUBEBUILDER_ASSETS=$BIN"
  echo "export LEPTON_TEST_REGISTRY=127.0.0.1:$REG_PORT"
  echo "export LEPTON_TEST_BUSYBOX_IMAGE=$BUSYBOX_IMAGE"
}

# --- stop ---------------------------------------------------------------

stop_all() {
  [ -d "$DIR" ] || { log "nothing to stop ($DIR absent)"; return 0; }
  stop_component kubelet
  # Kill the pods' processes: the shims of our containerd and what they run.
  if [ -S "$DIR/containerd/containerd.sock" ]; then
    for id in $(ctr -a "$DIR/containerd/containerd.sock" -n k8s.io tasks ls -q 2>/dev/null); do
      ctr -a "$DIR/containerd/containerd.sock" -n k8s.io tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
    done
  fi
  stop_component containerd
  # Shims outlive containerd; they were started with our socket's path.
  for p in /proc/[0-9]*; do
    if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -q -- "-address $DIR/containerd/containerd.sock"; then
      kill -KILL "${p#/proc/}" 2>/dev/null || true
    fi
  done
  for c in clusterdns kube-scheduler kube-controller-manager kube-apiserver etcd registry; do
    stop_component "$c"
  done
  # Network namespaces the CNI left, then the bridge.
  if [ -d /run/netns ]; then
    for ns in /run/netns/cni-*; do
      [ -e "$ns" ] || continue
      umount "$ns" 2>/dev/null || umount -l "$ns" 2>/dev/null || true
      rm -f "$ns"
    done
  fi
  ip link del "$BRIDGE" 2>/dev/null || true
  # Mounts under the work folder (kubelet's bind mount of its root, volumes,
  # containerd's snapshots), deepest first.
  findmnt -rn -o TARGET | awk -v d="$DIR" 'index($0, d"/") == 1' | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
  # Pod cgroups (cgroupfs driver), deepest first.
  for ctl in /sys/fs/cgroup/*/; do
    for top in "${ctl}kubepods" "${ctl}k8s.io"; do
      [ -d "$top" ] || continue
      find "$top" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    done
  done
  # Sysctls as they were before start.
  if [ -f "$DIR/host/sysctls" ]; then
    while read -r key value; do
      sysctl -q -w "$key=$value" >/dev/null 2>&1 || log "could not restore $key=$value"
    done <"$DIR/host/sysctls"
  fi
  if [ -f "$DIR/host/absent" ]; then
    while read -r p; do
      [ -e "$p" ] || continue
      findmnt -rn -o TARGET | awk -v d="$p" 'index($0, d"/") == 1 || $0 == d' | sort -r | while read -r m; do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
      done
      rm -rf "$p"
    done <"$DIR/host/absent"
  fi
  rm -rf "$DIR"
  log "stopped; host restored"
}

if [ "${1:-start}" = stop ]; then
  stop_all
  exit 0
fi
[ "${1:-start}" = start ] || die "usage: $0 [start|stop]"

# --- install and build --------------------------------------------------

missing=()
command -v containerd >/dev/null || missing+=(containerd)
command -v runc >/dev/null || missing+=(runc)
[ -x /bin/busybox ] || missing+=(busybox-static)
[ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
command -v iptables >/dev/null || missing+=(iptables)
command -v ip >/dev/null || missing+=(iproute2)
command -v openssl >/dev/null || missing+=(openssl)
command -v curl >/dev/null || missing+=(curl)
command -v kubectl >/dev/null || die "kubectl is missing (expected /usr/bin/kubectl)"
if [ ${#missing[@]} -gt 0 ]; then
  log "installing ${missing[*]} from apt"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

BIN="$(bash .ci/build-kubernetes.sh)"
mkdir -p "$DIR"/{run,logs,host,bin,certs,etcd,kubelet,kubelet-pki,pod-logs,cni/net.d,cni/ipam,containerd/certs.d,registry}

if [ ! -x "$DIR/bin/ociregistry" ] || [ ! -x "$DIR/bin/pause" ] || [ ! -x "$DIR/bin/clusterdns" ]; then
  log "building the registry, the cluster DNS and the pause program"
  go build -o "$DIR/bin/ociregistry" ./tools/ociregistry >&2
  go build -o "$DIR/bin/clusterdns" ./tools/clusterdns >&2
  CGO_ENABLED=0 go build -ldflags "-s -w" -o "$DIR/bin/pause" ./tools/pause >&2
fi

# --- what the host looked like ---------------------------------------------

if [ ! -f "$DIR/host/sysctls" ]; then
  for k in $SYSCTLS; do
    v="$(sysctl -n "$k" 2>/dev/null)" && echo "$k $v"
  done >"$DIR/host/sysctls.tmp"
  : >"$DIR/host/absent"
  for p in $HOST_PATHS; do
    [ -e "$p" ] || echo "$p" >>"$DIR/host/absent"
  done
  mv "$DIR/host/sysctls.tmp" "$DIR/host/sysctls"
fi

# --- credentials --------------------------------------------------------

if [ ! -f "$DIR/certs/sa.key" ]; then
  openssl genrsa -out "$DIR/certs/sa.key" 2048 2>/dev/null
  openssl rsa -in "$DIR/certs/sa.key" -pubout -out "$DIR/certs/sa.pub" 2>/dev/null
  head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$TOKEN_FILE"
  echo "$(cat "$TOKEN_FILE"),admin,admin-uid,\"system:masters\"" >"$DIR/certs/tokens.csv"
  chmod 600 "$DIR/certs/sa.key" "$TOKEN_FILE" "$DIR/certs/tokens.csv"
fi

# --- registry and images ------------------------------------------------

start_component registry "$DIR/bin/ociregistry" serve -addr "127.0.0.1:$REG_PORT" -dir "$DIR/registry"
wait_for registry 30 curl -fsS "http://127.0.0.1:$REG_PORT/v2/"
links=()
for a in $(/bin/busybox --list); do
  [ "$a" = busybox ] || links+=(-link "/bin/$a=busybox")
done
"$DIR/bin/ociregistry" push -repo "127.0.0.1:$REG_PORT/lepton/pause" -tag 1 \
  -file /pause="$DIR/bin/pause" -entrypoint /pause >&2
# By digest: a node keeps what it pulled under a tag.
BUSYBOX_IMAGE="$("$DIR/bin/ociregistry" push -repo "127.0.0.1:$REG_PORT/lepton/busybox" -tag 1 \
  -file /bin/busybox=/bin/busybox "${links[@]}" -entrypoint /bin/sh)"

# --- etcd and the control plane ---------------------------------------------

start_component etcd "$BIN/etcd" --name default --data-dir "$DIR/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
  --initial-cluster "default=http://127.0.0.1:$((ETCD_PORT + 1))" --unsafe-no-fsync
wait_for etcd 60 curl -fsS "http://127.0.0.1:$ETCD_PORT/health"

start_component kube-apiserver "$BIN/kube-apiserver" \
  --etcd-servers="http://127.0.0.1:$ETCD_PORT" --bind-address=127.0.0.1 --advertise-address=127.0.0.1 \
  --secure-port="$API_PORT" --cert-dir="$DIR/certs" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$DIR/certs/sa.pub" --service-account-signing-key-file="$DIR/certs/sa.key" \
  --service-cluster-ip-range=10.0.0.0/24 --token-auth-file="$DIR/certs/tokens.csv" \
  --authorization-mode=RBAC --allow-privileged=true \
  --kubelet-preferred-address-types=InternalIP,Hostname
wait_for "kube-apiserver certificate" 120 test -s "$DIR/certs/apiserver.crt"

cat >"$DIR/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: lepton
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority: $DIR/certs/apiserver.crt
users:
- name: admin
  user:
    token: $(cat "$TOKEN_FILE")
contexts:
- name: lepton
  context: {cluster: lepton, user: admin}
current-context: lepton
EOF
chmod 600 "$DIR/kubeconfig"
wait_for kube-apiserver 120 kc get --raw /readyz

start_component kube-controller-manager "$BIN/kube-controller-manager" \
  --kubeconfig="$DIR/kubeconfig" --bind-address=127.0.0.1 --leader-elect=false \
  --service-account-private-key-file="$DIR/certs/sa.key" --root-ca-file="$DIR/certs/apiserver.crt" \
  --controllers='*' --use-service-account-credentials=false
start_component kube-scheduler "$BIN/kube-scheduler" \
  --kubeconfig="$DIR/kubeconfig" --bind-address=127.0.0.1 --leader-elect=false

# --- node: bridge, CNI, containerd, kubelet ---------------------------------

if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
  ip link add "$BRIDGE" type bridge
  ip addr add "$NODE_IP/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up
fi
start_component clusterdns "$DIR/bin/clusterdns" -listen "$NODE_IP:53" -kubeconfig "$DIR/kubeconfig"
cat >"$DIR/cni/net.d/10-lepton.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "lepton",
  "plugins": [{
    "type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
    "ipam": {"type": "host-local", "ranges": [[{"subnet": "$SUBNET", "gateway": "$NODE_IP"}]], "dataDir": "$DIR/cni/ipam"}
  }]
}
EOF

mkdir -p "$DIR/containerd/certs.d/127.0.0.1:$REG_PORT"
cat >"$DIR/containerd/certs.d/127.0.0.1:$REG_PORT/hosts.toml" <<EOF
server = "http://127.0.0.1:$REG_PORT"
[host."http://127.0.0.1:$REG_PORT"]
  capabilities = ["pull", "resolve"]
EOF
cat >"$DIR/containerd/config.toml" <<EOF
version = 2
root = "$DIR/containerd/root"
state = "$DIR/containerd/state"
[grpc]
  address = "$DIR/containerd/containerd.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$DIR/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "127.0.0.1:$REG_PORT/lepton/pause:1"
  # runc cannot lower oom_score_adj without CAP_SYS_RESOURCE.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "$DIR/containerd/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$DIR/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$DIR/containerd/certs.d"
EOF
start_component containerd containerd --config "$DIR/containerd/config.toml"
wait_for containerd 60 ctr -a "$DIR/containerd/containerd.sock" version

cat >"$DIR/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://$DIR/containerd/containerd.sock
podLogsDir: $DIR/pod-logs
clusterDomain: cluster.local
clusterDNS: [$NODE_IP]
resolvConf: /etc/resolv.conf
evictionHard: {memory.available: "1Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
EOF
start_component kubelet "$BIN/kubelet" --config="$DIR/kubelet/config.yaml" \
  --kubeconfig="$DIR/kubeconfig" --hostname-override="$NODE" --node-ip="$NODE_IP" \
  --root-dir="$DIR/kubelet" --cert-dir="$DIR/kubelet-pki"
wait_for "node $NODE" 180 kc wait --for=condition=Ready "node/$NODE" --timeout=2s
wait_for "default service account" 60 kc get serviceaccount default -n default

print_env
