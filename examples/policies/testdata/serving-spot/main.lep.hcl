# An endpoint served from a T4 cluster with spot = true.
dataset "d" {
  source {
    inline = { x = [1, 2, 3, 4], y = [0, 1, 0, 1] }
  }
  label = "y"
}

training "t" {
  dataset   = dataset.d
  objective = "classification"
  model {
    kind = "linear"
  }
  epochs     = 1
  batch_size = 2
  seed       = 1
}

provider "aws" {
  region = "us-east-1"
}

cluster "gpu" {
  clouds  = ["aws"]
  regions = ["us-east-1"]
  gpu     = "T4:1"
  nodes   = 1
  spot    = true
}

endpoint "api" {
  model   = training.t.model
  cluster = cluster.gpu
}
