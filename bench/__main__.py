"""``python -m bench`` in a checkout: the runner that ships in the package (gputape.bench)."""

from gputape.bench.__main__ import main

if __name__ == "__main__":
    raise SystemExit(main())
