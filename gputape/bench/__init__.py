"""gputape's benchmark runner: the same workloads on every device, timed the same way.

Installed with the package (the ``bench`` extra brings its plotting and progress bar):
``gputape-bench --sizes small`` or ``python -m gputape.bench``; in a checkout ``make bench``.
"""
