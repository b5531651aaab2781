# A training and an endpoint on the cluster of main.lep.hcl. Every node boots
# the lepton agent from its user data; the training runs on node 0, the
# endpoint on every node. Try it without a cloud account with
# cmd/lepton-sandbox (see README.md).

dataset "flowers" {
  source {
    file = "data/flowers.csv"
  }
  label = "species"
  preprocess {
    missing   = "mean"
    normalize = "zscore"
  }
  split {
    train      = 0.6
    validation = 0.2
    test       = 0.2
    seed       = 1
    stratify   = true
  }
}

training "flowers" {
  cluster   = cluster.gpu
  dataset   = dataset.flowers
  objective = "classification"
  model {
    kind   = "mlp"
    hidden = [16]
  }
  optimizer {
    name          = "adam"
    learning_rate = 0.05
  }
  epochs = 200
  seed   = 7
}

endpoint "flowers" {
  cluster = cluster.gpu
  model   = training.flowers.model
}

output "model" {
  value = training.flowers.model
}

output "url" {
  value = endpoint.flowers.url
}
