"""Fine-tuning: training data, prompts rendered exactly as serving renders them, and the jobs that train on them."""
