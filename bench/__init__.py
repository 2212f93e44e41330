"""gputape's benchmark runner: the same workloads on every device, timed the same way."""
