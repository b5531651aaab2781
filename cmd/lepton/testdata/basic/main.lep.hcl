# A small project that every end-to-end test starts from: inline data, a CSV
# file, count and for_each, and outputs (one sensitive).

variable "seed" {
  type        = number
  default     = 7
  description = "Seed of the split."
}

dataset "a" {
  source {
    inline = { x = [1, 2, 3, 4], label = [0, 1, 0, 1] }
  }
  label = "label"
}

dataset "f" {
  source {
    file = "data/t.csv"
  }
}

dataset "c" {
  count = 2
  source {
    inline = { x = [count.index, 10] }
  }
}

dataset "e" {
  for_each = toset(["p", "q"])
  source {
    inline = { k = [each.key, "z"] }
  }
}

output "a_rows" {
  value = dataset.a.rows
}

output "f_digest" {
  value       = dataset.f.digest
  description = "Digest of the CSV dataset."
}

output "seed" {
  value     = var.seed
  sensitive = true
}
