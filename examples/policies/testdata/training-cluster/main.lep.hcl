# A training cluster of 4xA100 nodes on demand (a2-highgpu-4g, $14.69/hr a
# node in us-central1): one node is within the max-cost example's budget of
# $50/hr, three come close (a warning), four are over it.
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
  gpu     = "A100:4"
  nodes   = var.nodes
  spot    = false
}
