# A dataset read from PostgreSQL feeding a training. See README.md to start
# the database; change a row and `lepton plan` replaces the training.

variable "dsn" {
  type        = string
  description = "PostgreSQL connection string; sensitive, so plans and outputs never show it."
  sensitive   = true
  default     = "postgres://postgres@127.0.0.1:55432/lepton_example?sslmode=disable"
}

dataset "customers" {
  source {
    sql {
      driver = "postgres"
      dsn    = var.dsn
      query  = "SELECT tenure_months, monthly_spend, support_calls, plan, churned FROM customers ORDER BY id"
      # Plan reads only this, not the table: any insert, delete or update
      # that bumps updated_at changes the digest.
      version_query = "SELECT count(*), max(updated_at) FROM customers"
    }
  }
  label = "churned"

  preprocess {
    missing   = "median"
    encode    = "onehot"
    normalize = "zscore"
    anomalies {
      method    = "iqr"
      threshold = 3
      action    = "clip"
    }
  }

  split {
    train      = 0.8
    validation = 0.1
    test       = 0.1
    seed       = 1
    stratify   = true
  }
}

training "churn" {
  dataset   = dataset.customers
  objective = "classification"
  model {
    kind       = "mlp"
    hidden     = [32]
    activation = "relu"
  }
  optimizer {
    name          = "adam"
    learning_rate = 0.01
  }
  epochs     = 20
  batch_size = 32
  seed       = 1
}

output "rows" {
  value = dataset.customers.rows
}

output "test_accuracy" {
  value = training.churn.metrics.test_accuracy
}
