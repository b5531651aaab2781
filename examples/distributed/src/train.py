"""A stand-in for a distributed training: the ranks meet at MASTER_ADDR:MASTER_PORT.

Rank 0 listens there; every other rank connects and says hello; rank 0 writes
what it heard into LEPTON_OUTPUT_DIR. With FAIL_RANK set, that rank exits with
code 3 after meeting (its peers then fail or are stopped by lepton). The step
counter lives in LEPTON_CHECKPOINT_DIR, so a restarted run resumes from it.
"""

import json
import os
import socket
import sys
import time


def env(name):
    value = os.environ.get(name, "")
    if value == "":
        sys.exit(f"{name} is not set")
    return value


rank = int(env("NODE_RANK"))
nodes = int(env("NUM_NODES"))
master = env("MASTER_ADDR")
port = int(env("MASTER_PORT"))
if not 0 <= rank < nodes or env("NNODES") != str(nodes):
    sys.exit(f"NODE_RANK {rank} of NUM_NODES {nodes} (NNODES {os.environ['NNODES']})")
print(f"rank {rank} of {nodes}: master {master}:{port}, run {env('LEPTON_RUN_ID')}", flush=True)

ckpt = env("LEPTON_CHECKPOINT_DIR")
step_file = os.path.join(ckpt, "step")
step = int(open(step_file).read()) if os.path.exists(step_file) else 0
for step in range(step, int(os.environ.get("STEPS", "3"))):
    print(f"rank {rank}: step {step + 1}", flush=True)
    with open(step_file + ".tmp", "w") as f:
        f.write(str(step + 1))
    os.replace(step_file + ".tmp", step_file)  # atomic: a checkpoint is never torn
    time.sleep(float(os.environ.get("STEP_SECONDS", "0")))

deadline = time.time() + 120
heard = []
if rank == 0:
    # Bound to MASTER_ADDR itself: it must be this node's own address.
    srv = socket.create_server((master, port), reuse_port=False)
    srv.settimeout(5)
    while len(heard) < nodes - 1:
        if time.time() > deadline:
            sys.exit(f"rank 0: only {len(heard)} of {nodes - 1} ranks came to {master}:{port}")
        try:
            conn, _ = srv.accept()
        except socket.timeout:
            continue
        with conn:
            conn.settimeout(30)
            hello = conn.recv(256).decode()
            heard.append(hello)
            conn.sendall(b"welcome")
            print(f"rank 0 met {hello!r}", flush=True)
    srv.close()
else:
    while True:
        try:
            conn = socket.create_connection((master, port), timeout=5)
            break
        except OSError as e:
            if time.time() > deadline:
                sys.exit(f"rank {rank}: cannot reach rank 0 at {master}:{port}: {e}")
            time.sleep(0.2)
    with conn:
        conn.settimeout(30)
        conn.sendall(f"rank {rank}".encode())
        print(f"rank {rank} met rank 0: {conn.recv(256).decode()}", flush=True)

if os.environ.get("FAIL_RANK") == str(rank):
    print(f"rank {rank}: failing on purpose (FAIL_RANK)", flush=True)
    sys.exit(3)

out = env("LEPTON_OUTPUT_DIR")
with open(os.path.join(out, "result.json"), "w") as f:
    json.dump({"rank": rank, "nodes": nodes, "master": f"{master}:{port}", "heard": sorted(heard)}, f, sort_keys=True)
if rank == 0:
    with open(os.path.join(out, "metrics.json"), "w") as f:
        json.dump({"ranks_met": len(heard) + 1}, f)
print(f"rank {rank}: done", flush=True)
