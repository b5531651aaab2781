# Your own program on every node of a two-node cluster: lepton uploads src/
# (once per content), starts `python3 train.py` on both nodes with the
# torchrun variables set (NODE_RANK, NUM_NODES, MASTER_ADDR, MASTER_PORT, ...),
# and downloads what node 0 leaves in LEPTON_OUTPUT_DIR. Try it without a
# cloud account with cmd/lepton-sandbox (see README.md).

provider "aws" {
  region = "us-east-1"
}

cluster "gpu" {
  clouds = ["aws"]
  gpu    = "A100:8"
  nodes  = 2
}

training "ddp" {
  cluster = cluster.gpu
  run {
    command        = ["python3", "train.py"]
    workdir        = "src"
    checkpoint_dir = "checkpoints"
    env = {
      STEPS = "3"
    }
  }
}

output "outputs" {
  value = training.ddp.outputs
}
