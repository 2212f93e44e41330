"""Interleaved A/B timing of two checkouts of gputape on the CPU (A B A B ..., medians).

On a shared machine one run can be 2x slower than the next; alternating the two versions
round by round, each in a fresh process, and comparing medians across rounds is what makes a
5 % claim believable (bench/NOTES.md). Example, the working tree against a commit::

    git worktree add /tmp/base <commit>
    python bench/ab.py /tmp/base . --rounds 5 --workloads tiny_chain,mlp_step

Prints, per workload, each version's median over the rounds (of the per-round medians), the
range across rounds, and the ratio B/A (below 1: B is faster).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

DEFAULT = ("tiny_chain,elementwise_grad:2e6,mlp_step,third_derivative,hessian_64,"
           "jacobian_256")

# Runs in a child process with the checkout on its path: one median per workload.
_CHILD = """
import json, sys
import numpy as np
from gputape.bench.timing import measure
from gputape.bench.workloads import WORKLOADS
found = {}
for spec in sys.argv[2].split(","):
    name, _, size = spec.partition(":")
    work = {w.name: w for w in WORKLOADS}[name]
    size = int(float(size)) if size else work.fixed_size
    run = work.build(size, "cpu", np.random.default_rng(0))
    found[spec] = measure(run, "cpu", repeat=int(sys.argv[1])).median_s
print(json.dumps(found))
"""


def _time(checkout: str, workloads: str, repeat: int) -> dict:
    env = dict(os.environ, PYTHONPATH=os.path.abspath(checkout))
    done = subprocess.run([sys.executable, "-c", _CHILD, str(repeat), workloads],
                          env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a", help="the baseline checkout (a folder holding gputape/)")
    parser.add_argument("b", help="the checkout to compare with it")
    parser.add_argument("--workloads", default=DEFAULT,
                        help="name[:size],... of gputape.bench.workloads (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=7, help="samples per workload and round")
    args = parser.parse_args(argv)
    runs: dict = {"a": [], "b": []}
    for i in range(args.rounds):
        order = ("a", "b") if i % 2 == 0 else ("b", "a")
        for which in order:
            runs[which].append(_time(getattr(args, which), args.workloads, args.repeat))
    print(f"{'workload':26} {'A median':>10} {'B median':>10} {'B/A':>6}   A range / B range")
    for spec in args.workloads.split(","):
        a = [r[spec] for r in runs["a"]]
        b = [r[spec] for r in runs["b"]]
        ma, mb = statistics.median(a), statistics.median(b)
        print(f"{spec:26} {ma * 1e6:9.1f}u {mb * 1e6:9.1f}u {mb / ma:6.3f}   "
              f"{min(a) * 1e6:.0f}-{max(a) * 1e6:.0f} / {min(b) * 1e6:.0f}-{max(b) * 1e6:.0f} us")


if __name__ == "__main__":
    main()
