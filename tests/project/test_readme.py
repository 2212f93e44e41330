"""The README's examples run as written and print what it says."""

import doctest
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_examples_run():
    result = doctest.testfile(
        str(README), module_relative=False,
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
    )
    assert result.attempted > 20
    assert result.failed == 0, f"{result.failed} README example(s) failed (see output above)"


def test_the_op_list_is_the_librarys():
    """The README's op list names every public op of the library, and nothing else."""
    import re

    import gputape.ops

    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = text[text.index("### The op library"):text.index("Each op is declared once")]
    listed = set()
    for quoted in re.findall(r"`([^`]+)`", section):
        listed.update(w for w in quoted.split() if re.fullmatch(r"[a-z_0-9]+", w))
    import gputape.linalg
    import gputape.nn

    library = set(gputape.ops.__all__) | set(gputape.nn.__all__) | set(gputape.linalg.__all__)
    assert not library - listed, f"ops missing from the README's list: {library - listed}"
    assert not listed - library - {"nn", "gt", "linalg"}, f"not ops: {listed - library}"
