"""Training: optimizers, checkpoints, data-parallel training (public as gputape.distributed)."""
