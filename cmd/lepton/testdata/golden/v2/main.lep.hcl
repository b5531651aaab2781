# v1 changed: upd and src updated (score replaced), gone removed, one
# shard less, a new dataset holding the secret.

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
    inline = { x = [1, 2, 3, 4], y = ["a", "b", "c", "d"] }
  }
}

dataset "src" {
  source {
    inline = { f = [0.5, 2.5], label = [0, 1] }
  }
  label = "label"
}

dataset "shard" {
  count = 2
  source {
    inline = { i = [count.index] }
  }
}

dataset "secret" {
  source {
    inline = { t = [var.token, "public"] }
  }
}

# Consumes src: replaced because src changes.
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

dataset "fresh" {
  source {
    inline = { k = [var.token, "b"], v = [1, 2] }
  }
  label = "k"
}
