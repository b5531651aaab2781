# A starter lepton project: two datasets processed on this machine.
# Run `lepton plan`, then `lepton apply`.

variable "seed" {
  type        = number
  default     = 1
  description = "Seed of the train/validation/test split."
  validation {
    condition     = var.seed >= 0
    error_message = "seed must not be negative."
  }
}

# A CSV file next to this configuration: cleaned, normalised and split.
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
    seed       = var.seed
    stratify   = true
  }
}

# Small data can live in the configuration itself, column by column.
dataset "xor" {
  source {
    inline = {
      a     = [0, 0, 1, 1]
      b     = [0, 1, 0, 1]
      label = [0, 1, 1, 0]
    }
  }
  label = "label"
}

output "flowers_rows" {
  value       = dataset.flowers.rows
  description = "Rows kept after cleaning."
}

output "flowers_digest" {
  value = dataset.flowers.digest
}
