# Transfer learning: a small CNN pretrained on MNIST digits 0-4 is fine-tuned on
# only 500 labelled examples of digits 5-9, with its first layer frozen, and
# compared with the same network trained from scratch on those 500.

variable "pretrain_epochs" {
  type    = number
  default = 2
}

variable "finetune_epochs" {
  type    = number
  default = 30
}

locals {
  first_half  = ["0", "1", "2", "3", "4"]
  second_half = ["5", "6", "7", "8", "9"]
}

dataset "digits_0_4" {
  source {
    builtin = "mnist"
  }
  label = "label"
  preprocess {
    normalize = "zscore"
  }
  subset {
    classes = local.first_half
  }
}

dataset "digits_5_9_few" {
  source {
    builtin = "mnist"
  }
  label = "label"
  preprocess {
    normalize = "zscore"
  }
  subset {
    classes    = local.second_half
    train_rows = 500 # the test split keeps every image of 5-9
    seed       = 1
  }
}

training "pretrain" {
  dataset   = dataset.digits_0_4
  objective = "classification"
  model {
    kind   = "cnn"
    hidden = [128]
  }
  epochs     = var.pretrain_epochs
  batch_size = 64
  seed       = 1
}

# Starts from the pretrained weights; the first convolution keeps the
# pretrained filters, the layers after it learn the new digits.
training "finetune" {
  dataset       = dataset.digits_5_9_few
  objective     = "classification"
  base_model    = training.pretrain.model
  freeze_layers = 1
  model {
    kind   = "cnn"
    hidden = [128]
  }
  epochs     = var.finetune_epochs
  batch_size = 32
  seed       = 1
}

# The same network and data, from random weights.
training "scratch" {
  dataset   = dataset.digits_5_9_few
  objective = "classification"
  model {
    kind   = "cnn"
    hidden = [128]
  }
  epochs     = var.finetune_epochs
  batch_size = 32
  seed       = 1
}

output "finetune_accuracy" {
  value = training.finetune.metrics.test_accuracy
}

output "scratch_accuracy" {
  value = training.scratch.metrics.test_accuracy
}
