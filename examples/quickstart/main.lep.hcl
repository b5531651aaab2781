# lepton quickstart: train a digit classifier on MNIST on this machine and
# serve it over HTTP.
#
#   lepton apply          # reads MNIST (bundled), trains 3 epochs, starts the endpoint
#   lepton predict endpoint.digits -input-file digit.json
#   lepton show training.digits

variable "epochs" {
  type        = number
  default     = 3
  description = "Passes over the 60,000 training images."
  validation {
    condition     = var.epochs >= 1
    error_message = "epochs must be at least 1."
  }
}

dataset "digits" {
  source {
    builtin = "mnist" # 60,000 training and 10,000 test images, bundled in the binary
  }
  label = "label"
  preprocess {
    normalize = "zscore" # one mean and deviation over every pixel, from the training split
  }
}

training "digits" {
  dataset   = dataset.digits
  objective = "classification"
  model {
    kind   = "mlp"
    hidden = [128]
  }
  optimizer {
    name          = "adam"
    learning_rate = 0.001
  }
  epochs     = var.epochs
  batch_size = 64
  seed       = 1
}

# A server process of this binary, on a free loopback port, bearer token
# required (lepton predict reads it from state).
endpoint "digits" {
  model          = training.digits.model
  replicas       = 2
  max_batch_size = 256
}

output "test_accuracy" {
  value       = training.digits.metrics.test_accuracy
  description = "Accuracy on the 10,000 held-out test images."
}

output "model" {
  value = training.digits.model
}

output "url" {
  value = endpoint.digits.url
}
