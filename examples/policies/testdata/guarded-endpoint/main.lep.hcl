# An endpoint that leaves auth unset: its default, true, requires a token.
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

endpoint "api" {
  model = training.t.model
}
