# A training cluster of 8xA100 nodes on demand, at $23.57/hr a node: one node
# is within the max-cost example's budget of $50/hr, two come close (a
# warning), three are over it.
variable "nodes" {
  type    = number
  default = 1
}

provider "gcp" {
  project = "my-ml-project"
  region  = "us-central1"
}

cluster "train" {
  clouds  = ["gcp"]
  regions = ["us-central1"]
  gpu     = "A100:8"
  nodes   = var.nodes
  spot    = false
}
