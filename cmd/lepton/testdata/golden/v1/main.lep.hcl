# The configuration applied first; v2 is planned against its state.

variable "token" {
  type        = string
  sensitive   = true
  description = "An API token: it must never appear in any output."
}

dataset "keep" {
  source {
    inline = { x = [1, 2, 3] }
  }
}

dataset "upd" {
  source {
    inline = { x = [1, 2, 3], y = ["a", "b", "c"] }
  }
}

dataset "gone" {
  source {
    inline = { z = [true, false] }
  }
}

dataset "src" {
  source {
    inline = { f = [0.5, 1.5], label = [0, 1] }
  }
  label = "label"
}

dataset "shard" {
  count = 3
  source {
    inline = { i = [count.index] }
  }
}

dataset "secret" {
  source {
    inline = { t = [var.token, "public"] }
  }
}

# A consumer of src: v2 changes src, so the plan replaces it.
training "score" {
  dataset   = dataset.src
  objective = "classification"
  model {
    kind = "linear"
  }
  epochs     = 1
  batch_size = 2
  seed       = 1
}

output "keep_digest" {
  value = dataset.keep.digest
}

output "token_echo" {
  value     = "token=${var.token}"
  sensitive = true
}
