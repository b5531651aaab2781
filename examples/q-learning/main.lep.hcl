# Tabular Q-learning on Gymnasium's FrozenLake: no dataset, the agent learns
# from the environment. The model artifact holds the Q-table and the greedy
# policy.

training "lake" {
  objective = "q_learning"
  environment {
    name     = "frozen_lake" # frozen_lake | cliff_walking | gridworld
    size     = 4             # 4 or 8
    slippery = true          # moves go to the intended or a perpendicular direction, 1/3 each
  }
  episodes      = 20000
  discount      = 0.99
  learning_rate = 0.1
  epsilon {
    start          = 1.0
    end            = 0.01
    decay_episodes = 15000
  }
  seed = 1
}

training "cliff" {
  objective = "q_learning"
  environment {
    name = "cliff_walking"
  }
  seed = 1
}

output "lake_success_rate" {
  value       = training.lake.metrics.success_rate
  description = "Share of 10,000 evaluation episodes of the greedy policy that reach the goal."
}

output "cliff_return" {
  value = training.cliff.metrics.mean_return
}
