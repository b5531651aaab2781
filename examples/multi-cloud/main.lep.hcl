# A GPU cluster that may land on AWS, GCP or Azure: lepton picks the cheapest
# offer of its catalog that meets the constraints, and fails over to the next
# one (another zone, region or cloud) when a cloud has no capacity.

variable "nodes" {
  type        = number
  default     = 2
  description = "Nodes in the cluster; changing it resizes the cluster in place."
}

variable "gcp_project" {
  type    = string
  default = "my-ml-project"
}

variable "azure_subscription" {
  type    = string
  default = "00000000-0000-0000-0000-000000000000"
}

provider "aws" {
  region = "us-east-1"
}

provider "gcp" {
  project = var.gcp_project
  region  = "us-central1"
}

provider "azure" {
  subscription_id = var.azure_subscription
  location        = "eastus"
  resource_group  = "ml"
}

cluster "gpu" {
  clouds             = ["aws", "gcp", "azure"]
  regions            = ["us-east-1", "us-west-2", "us-central1", "europe-west4", "eastus", "westus2"]
  gpu                = "A100:8"
  nodes              = var.nodes
  spot               = false
  max_price_per_hour = 45
  disk_gb            = 256
}

output "placement" {
  value       = "${cluster.gpu.cloud} ${cluster.gpu.instance_type} in ${cluster.gpu.region} ${cluster.gpu.zone}"
  description = "Where the cluster landed (after any failover)."
}

output "cost_per_hour" {
  value = cluster.gpu.price_per_hour
}

output "nodes" {
  value = cluster.gpu.node_addresses
}
