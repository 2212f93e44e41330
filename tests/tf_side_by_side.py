"""Run random GradientTape programs in TensorFlow and in gputape, and compare what they give.

This is a tool run by hand, not a test: it needs TensorFlow (``tensorflow-cpu``), which the
test suite never imports. From the repository root, with a virtual environment that has
TensorFlow and NumPy::

    PYTHONPATH=. /path/to/venv-with-tf/bin/python tests/tf_side_by_side.py --programs 500 --seed 0

Each program is generated once, as TensorFlow source with one statement a line (constants and
Variables, trainable or not, watched or not; one tape, persistent or not, maybe nested in an
outer tape; ops from the shared table ``OPS``, some under ``stop_recording``; then queries:
``gradient`` with list targets, ``output_gradients`` and ``unconnected_gradients``,
``jacobian``, ``batch_jacobian``, ``watched_variables``). The same text then runs twice: once
with ``tf`` bound to TensorFlow and once with ``tf`` bound to gputape (``tf.math.X`` and
``tf.nn.X`` resolve to ``gt.X`` or ``gt.nn.X``). Every forward tensor and every query result is
compared: exception or not, ``None`` or not, structure, shape, dtype, and values (``rtol``
1e-5 for float32, 1e-10 for float64). The summary counts agreements and groups disagreements by
class, with the shortest program of each class as its example.

The pieces work without TensorFlow, which is how the examples below run:

>>> import random
>>> program = generate(random.Random(0))
>>> program.source().startswith("x0 = tf.")
True
>>> outcome = execute(gputape_namespace(), program)
>>> compare(program, outcome, outcome)
[]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import random
import warnings

import numpy as np

RTOL = {"float32": 1e-5, "float64": 1e-10}

# -- the shared op table ------------------------------------------------------------------
# Each entry maps operand shapes to (expression template, result shape), or None where the op
# does not apply. Templates are TensorFlow source; {0} and {1} are the operands' names.


def _broadcast(a: tuple, b: tuple) -> tuple | None:
    try:
        return tuple(np.broadcast_shapes(a, b))
    except ValueError:
        return None


def _unary(template: str):
    return lambda rng, a: (template, a)


def _binary(template: str):
    def make(rng, a, b):
        shape = _broadcast(a, b)
        return None if shape is None else (template, shape)
    return make


def _reduce(name: str):
    def make(rng, a):
        rank = len(a)
        axis = rng.choice([None, "int", "list"]) if rank else rng.choice([None, "empty"])
        keep = rng.random() < 0.4
        if axis == "int":
            axes = [rng.randrange(-rank, rank)]
            text = str(axes[0])
        elif axis == "list":
            axes = sorted(rng.sample(range(rank), rng.randint(0, rank)))
            text = str(axes)
        elif axis == "empty":
            axes, text = [], "[]"
        else:
            axes, text = list(range(rank)), "None"
        axes = {x % rank for x in axes} if rank else set()
        shape = tuple(1 if i in axes else d for i, d in enumerate(a) if keep or i not in axes)
        return f"tf.{name}({{0}}, axis={text}, keepdims={keep})", shape
    return make


def _reshape(rng, a):
    size = math.prod(a)
    target = rng.choice([[-1], [size, 1], [1, size], list(a) + [1], list(a)])
    return f"tf.reshape({{0}}, {target})", tuple(size if d == -1 else d for d in target)


def _transpose(rng, a):
    if len(a) < 2:
        return None
    perm = rng.sample(range(len(a)), len(a))
    return f"tf.transpose({{0}}, {perm})", tuple(a[i] for i in perm)


def _squeeze(rng, a):
    ones = [i for i, d in enumerate(a) if d == 1]
    if ones and rng.random() < 0.5:
        axis = rng.choice(ones)
        return f"tf.squeeze({{0}}, axis={axis})", a[:axis] + a[axis + 1:]
    return "tf.squeeze({0})", tuple(d for d in a if d != 1)


def _expand_dims(rng, a):
    axis = rng.randint(-len(a) - 1, len(a))
    at = axis % (len(a) + 1)
    return f"tf.expand_dims({{0}}, {axis})", a[:at] + (1,) + a[at:]


def _broadcast_to(rng, a):
    shape = tuple(2 if d == 1 else d for d in a)
    if rng.random() < 0.5:
        shape = (2,) + shape
    return f"tf.broadcast_to({{0}}, {list(shape)})", shape


def _tile(rng, a):
    reps = [rng.choice([1, 2]) for _ in a]
    return f"tf.tile({{0}}, {reps})", tuple(d * r for d, r in zip(a, reps))


def _slice(rng, a):
    if not a:
        return None
    if rng.random() < 0.5:
        return "{0}[1:]", (max(a[0] - 1, 0),) + a[1:]
    return "{0}[0]", a[1:]


def _gather(rng, a):
    if not a:
        return None
    axis = rng.randrange(len(a))
    if not a[axis]:
        return None
    indices = [rng.randrange(a[axis]) for _ in range(rng.randint(1, 3))]
    if rng.random() < 0.05:  # now and then an index TensorFlow refuses on the CPU
        indices[0] = rng.choice([-1, a[axis]])
    shape = a[:axis] + (len(indices),) + a[axis + 1:]
    return f"tf.gather({{0}}, {indices}, axis={axis})", shape


def _matmul(rng, a, b):
    if len(a) < 2 or len(b) != 2 or a[-1] != b[0]:
        return None
    return "tf.matmul({0}, {1})", a[:-1] + b[1:]


def _last_axis(template: str):
    return lambda rng, a: (template, a) if a else None


def _concat(rng, a, b):
    if not a or len(a) != len(b) or a[1:] != b[1:]:
        return None
    return "tf.concat([{0}, {1}], axis=0)", (a[0] + b[0],) + a[1:]


def _pack(rng, a):  # a Python list of tensors, which TensorFlow packs (recorded) into one
    return "tf.identity([{0}, {0}])", (2,) + a


def _stack(rng, a, b):
    return ("tf.stack([{0}, {1}])", (2,) + a) if a == b else None


UNARY = {
    "exp": _unary("tf.exp({0})"), "log": _unary("tf.math.log({0} * {0} + 1.0)"),
    "sqrt": _unary("tf.sqrt({0} * {0} + 0.25)"), "tanh": _unary("tf.tanh({0})"),
    "sigmoid": _unary("tf.sigmoid({0})"), "relu": _unary("tf.nn.relu({0})"),
    "abs": _unary("tf.abs({0})"), "square": _unary("tf.square({0})"),
    "negative": _unary("tf.negative({0})"), "expm1": _unary("tf.math.expm1({0})"),
    "log1p": _unary("tf.math.log1p(tf.abs({0}))"), "sin": _unary("tf.sin({0})"),
    "cos": _unary("tf.cos({0})"), "softplus": _unary("tf.nn.softplus({0})"),
    "floor": _unary("tf.floor({0})"), "round": _unary("tf.round({0})"),
    "sign": _unary("tf.sign({0})"), "identity": _unary("tf.identity({0})"),
    "stop_gradient": _unary("tf.stop_gradient({0})"),
    "clip": _unary("tf.clip_by_value({0}, -1.0, 1.0)"), "scale": _unary("2.5 * {0}"),
    "shift": _unary("{0} - 1.5"), "int_power": _unary("{0} ** 2"),
    "reduce_sum": _reduce("reduce_sum"), "reduce_mean": _reduce("reduce_mean"),
    "reduce_max": _reduce("reduce_max"), "reduce_min": _reduce("reduce_min"),
    "reduce_prod": _reduce("reduce_prod"), "reduce_logsumexp": _reduce("reduce_logsumexp"),
    "reshape": _reshape, "transpose": _transpose, "squeeze": _squeeze,
    "expand_dims": _expand_dims, "broadcast_to": _broadcast_to, "tile": _tile,
    "slice": _slice, "gather": _gather, "pack": _pack,
    "softmax": _last_axis("tf.nn.softmax({0})"),
    "log_softmax": _last_axis("tf.nn.log_softmax({0})"),
}
BINARY = {
    "add": _binary("tf.add({0}, {1})"), "subtract": _binary("{0} - {1}"),
    "multiply": _binary("{0} * {1}"), "divide": _binary("{0} / ({1} * {1} + 0.5)"),
    "maximum": _binary("tf.maximum({0}, {1})"), "minimum": _binary("tf.minimum({0}, {1})"),
    "pow": _binary("tf.pow(tf.abs({0}) + 0.5, {1})"),
    "where": _binary("tf.where(tf.greater({0}, {1}), {0}, {1})"),
    "matmul": _matmul, "concat": _concat, "stack": _stack,
}
OPS = {**UNARY, **BINARY}


# -- programs -----------------------------------------------------------------------------
@dataclasses.dataclass
class Program:
    """TensorFlow source in two parts: the forward block, then one statement per query.

    ``compared`` names the forward tensors to compare; query ``i`` assigns ``r{i}`` and
    ``kinds[i]`` says what it is (``gradient``, ``jacobian``, ...).
    """

    forward: list
    queries: list
    kinds: list
    compared: list

    def source(self) -> str:
        return "\n".join(self.forward + self.queries)


def _literal(rng, shape: tuple, dtype: str) -> str:
    if not math.prod(shape):
        return f"tf.zeros({list(shape)}, dtype=tf.{dtype})"
    values = np.round(np.array([rng.uniform(-2, 2) for _ in range(math.prod(shape))]), 2)
    return f"tf.constant({values.reshape(shape).tolist()!r}, dtype=tf.{dtype})"


def _shape(rng) -> tuple:
    return tuple(rng.choice([1, 2, 3]) for _ in range(rng.choice([0, 1, 1, 2, 2, 3])))


def generate(rng: random.Random) -> Program:
    """One random program; the same ``rng`` state always gives the same text.

    >>> import random
    >>> generate(random.Random(5)).source() == generate(random.Random(5)).source()
    True
    """
    dtype = rng.choice(["float32", "float64"])
    lines, leaves, watched = [], [], []
    for i in range(rng.randint(1, 3)):
        name, shape = f"x{i}", _shape(rng)
        leaf_dtype = "float64" if dtype == "float32" and rng.random() < 0.03 else dtype
        kind = rng.choice(["constant", "constant", "trainable", "untrainable"])
        value = _literal(rng, shape, leaf_dtype)
        if kind == "constant":
            lines.append(f"{name} = {value}")
        else:
            lines.append(f"{name} = tf.Variable({value}, trainable={kind == 'trainable'})")
        if kind != "trainable" and rng.random() < 0.7:
            watched.append(name)
        leaves.append((name, shape))
    pool = list(leaves)
    nested, persistent = rng.random() < 0.25, rng.random() < 0.5
    pad = "    " * (1 + nested)
    if nested:
        lines.append("with tf.GradientTape() as outer:")
        lines += [f"    outer.watch({n})" for n, _ in leaves]
    lines.append(f"{pad[4:]}with tf.GradientTape(persistent={persistent}) as tape:")
    lines += [f"{pad}tape.watch({n})" for n in watched]
    compared = []
    for step in range(rng.randint(1, 6)):
        made = None
        while made is None:
            op = OPS[rng.choice(list(OPS))]
            operands = [rng.choice(pool)]
            if op in BINARY.values():
                operands.append(rng.choice(pool))
                if op is _matmul and len(operands[0][1]) >= 2 and rng.random() < 0.8:
                    shape = (operands[0][1][-1], rng.choice([1, 2]))
                    operands[1] = (_literal(rng, shape, dtype), shape)
            made = op(rng, *(s for _, s in operands))
        template, shape = made
        name = f"t{step}"
        expr = template.format(*(n for n, _ in operands))
        if rng.random() < 0.1:
            paused = rng.choice(["tape", "outer"]) if nested else "tape"
            lines += [f"{pad}with {paused}.stop_recording():", f"{pad}    {name} = {expr}"]
        else:
            lines.append(f"{pad}{name} = {expr}")
        pool.append((name, shape))
        if rng.random() < 0.05:  # a late watch: of a leaf already read, or of a result
            lines.append(f"{pad}tape.watch({rng.choice(pool)[0]})")
        compared.append(name)
    results = pool[len(leaves):]
    target = results[-1]
    queries, kinds = [], []
    if nested:
        source = rng.choice(leaves)[0]
        lines += [f"    g = tape.gradient({target[0]}, {source}, unconnected_gradients='zero')",
                  "    g = tf.convert_to_tensor(g)",  # TF may give IndexedSlices
                  "    s = tf.reduce_sum(g * g)"]
        compared += ["g", "s"]
        sources = "[" + ", ".join(n for n, _ in leaves) + "]"
        queries.append(f"r0 = outer.gradient({rng.choice(['s', 'g'])}, {sources})")
        kinds.append("outer gradient")
        return Program(lines, queries, kinds, compared)
    for i in range(rng.randint(1, 3) if persistent else 1):
        kind, text = _query(rng, leaves, results, dtype)
        queries.append(f"r{i} = {text}")
        kinds.append(kind)
    return Program(lines, queries, kinds, compared)


def _query(rng, leaves: list, results: list, dtype: str) -> tuple:
    roll = rng.random()
    unconnected = ", unconnected_gradients='zero'" if rng.random() < 0.3 else ""
    if roll < 0.05:
        return "watched_variables", "[v.numpy() for v in tape.watched_variables()]"
    if roll < 0.3:
        (y, _), (x, _) = rng.choice(results), rng.choice(leaves)
        return "jacobian", f"tape.jacobian({y}, {x}{unconnected})"
    if roll < 0.4:
        pairs = [(y, x) for y, ys in results for x, xs in leaves
                 if len(ys) >= 2 and len(xs) >= 2 and ys[0] == xs[0]]
        if not pairs or rng.random() < 0.2:  # now and then one TensorFlow refuses
            pairs = [(y, x) for y, _ in results for x, _ in leaves]
        y, x = rng.choice(pairs)
        return "batch_jacobian", f"tape.batch_jacobian({y}, {x}{unconnected})"
    targets = rng.sample(results, rng.randint(1, min(2, len(results))))
    sources = [n for n, _ in leaves]
    if rng.random() < 0.3:
        sources.append(rng.choice(results)[0])
    seeds = ""
    if rng.random() < 0.3:
        seeds = ", output_gradients=[" + ", ".join(_literal(rng, s, dtype) for _, s in targets)
        seeds += "]"
    target = targets[0][0] if len(targets) == 1 and not seeds else \
        "[" + ", ".join(n for n, _ in targets) + "]"
    return "gradient", f"tape.gradient({target}, [{', '.join(sources)}]{seeds}{unconnected})"


# -- two backends -------------------------------------------------------------------------
class _Spelling:
    """``tf.X``, ``tf.math.X`` and ``tf.nn.X`` spelled against gputape (``gt.nn.X`` or ``gt.X``)."""

    def __init__(self, *homes) -> None:
        self._homes = homes

    def __getattr__(self, name: str):
        if name == "math":
            return self
        for home in self._homes:
            if hasattr(home, name):
                return getattr(home, name)
        raise AttributeError(f"gputape has no {name!r}")


def gputape_namespace() -> dict:
    """The globals a program runs with for gputape: ``tf`` spells gputape's names."""
    import gputape as gt

    tf = _Spelling(gt)
    tf.nn = _Spelling(gt.nn, gt)
    return {"tf": tf, "__name__": "gputape program"}


def tensorflow_namespace() -> dict:
    """The globals a program runs with for TensorFlow (imported here, on first use)."""
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    return {"tf": tf, "__name__": "tensorflow program"}


@dataclasses.dataclass
class Raised:
    """An exception in place of a value: its class name and the first line of its message."""

    kind: str
    message: str

    @classmethod
    def of(cls, error: BaseException) -> "Raised":
        lines = str(error).strip().splitlines() or [""]
        return cls(type(error).__name__, lines[0][:200])


@dataclasses.dataclass
class Outcome:
    """What one backend gave: the forward values (or the forward's exception), then each query's."""

    forward: "dict | Raised"
    queries: list


def _plain(value, tf):
    """None, a NumPy array, or a list of these, whatever the backend's result types."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return [_plain(v, tf) for v in value]
    if type(value).__name__ == "IndexedSlices":
        value = tf.convert_to_tensor(value)
    return np.asarray(value.numpy() if hasattr(value, "numpy") else value)


def execute(namespace: dict, program: Program) -> Outcome:
    """Run ``program`` with ``namespace`` as its globals; no exception escapes."""
    env = dict(namespace)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            exec("\n".join(program.forward), env)
        except Exception as error:  # an exception is a result here
            return Outcome(Raised.of(error), [])
        forward = {n: _plain(env[n], env["tf"]) for n in program.compared}
        queries = []
        for i, query in enumerate(program.queries):
            try:
                exec(query, env)
                queries.append(_plain(env[f"r{i}"], env["tf"]))
            except Exception as error:
                queries.append(Raised.of(error))
    return Outcome(forward, queries)


# -- comparing ----------------------------------------------------------------------------
def _brief(value) -> str:
    if isinstance(value, np.ndarray):
        text = f"{value.dtype}{list(value.shape)} {np.array2string(value, threshold=8)}"
        return " ".join(text.split())[:160]
    if isinstance(value, list):
        return "[" + ", ".join(_brief(v) for v in value) + "]"
    return repr(value)


def _differ(tf_value, gt_value, where: str) -> "tuple | None":
    """(class, detail) for the first difference between two plain results, else None.

    ``where`` names the result (``r0``, ``t3``); the detail extends it with list indices.
    """
    if isinstance(tf_value, Raised) or isinstance(gt_value, Raised):
        if isinstance(tf_value, Raised) and isinstance(gt_value, Raised):
            return None
        who = "TF" if isinstance(tf_value, Raised) else "gputape"
        error = tf_value if who == "TF" else gt_value
        other = gt_value if who == "TF" else tf_value
        other = "no exception" if isinstance(other, dict) else _brief(other)
        return f"exception only in {who}", f"{where}: {error.kind}: {error.message} / {other}"
    both = f"{where}: TF {_brief(tf_value)}, gputape {_brief(gt_value)}"
    if (tf_value is None) != (gt_value is None):
        return ("None in TF, value in gputape" if tf_value is None
                else "value in TF, None in gputape"), both
    if tf_value is None:
        return None
    if isinstance(tf_value, list) or isinstance(gt_value, list):
        if not (isinstance(tf_value, list) and isinstance(gt_value, list)) \
                or len(tf_value) != len(gt_value):
            return "structure", both
        for i, (a, b) in enumerate(zip(tf_value, gt_value)):
            found = _differ(a, b, f"{where}[{i}]")
            if found:
                return found
        return None
    if tf_value.shape != gt_value.shape:
        return "shape", both
    if tf_value.dtype != gt_value.dtype:
        return "dtype", both
    rtol = RTOL.get(tf_value.dtype.name, 0)
    scale = max(1.0, float(np.max(np.abs(tf_value), initial=0, where=np.isfinite(tf_value))))
    if not np.allclose(tf_value, gt_value, rtol=rtol, atol=rtol * scale, equal_nan=True):
        return "value mismatch", both
    return None


def compare(program: Program, tf_outcome: Outcome, gt_outcome: Outcome) -> list:
    """The disagreements, as (class, detail) pairs; the class says where it happened.

    >>> p = Program([], ["r0 = tape.gradient(t0, [x0])"], ["gradient"], ["t0"])
    >>> one = {"t0": np.array(1.0)}
    >>> compare(p, Outcome(one, [[None]]), Outcome(one, [[np.zeros(2)]]))
    [('gradient: None in TF, value in gputape', 'r0[0]: TF None, gputape float64[2] [0. 0.]')]
    """
    if isinstance(tf_outcome.forward, Raised) or isinstance(gt_outcome.forward, Raised):
        differs = _differ(tf_outcome.forward, gt_outcome.forward, "forward")
        return [(f"forward: {differs[0]}", differs[1])] if differs else []
    pairs = [("forward", name, tf_outcome.forward[name], gt_outcome.forward[name])
             for name in program.compared]
    pairs += [(kind, f"r{i}", tf_outcome.queries[i], gt_outcome.queries[i])
              for i, kind in enumerate(program.kinds)]
    found = []
    for stage, where, tf_value, gt_value in pairs:
        differs = _differ(tf_value, gt_value, where)
        if differs:
            found.append((f"{stage}: {differs[0]}", differs[1]))
    return found


# -- the run ------------------------------------------------------------------------------
def main(argv=None) -> int:
    """Generate, run on both backends, compare, and print the summary; 1 if anything differs."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--programs", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show", type=int, default=1, help="examples printed per class")
    args = parser.parse_args(argv)
    tf_ns, gt_ns = tensorflow_namespace(), gputape_namespace()
    rng = random.Random(args.seed)
    agreed = both_raised = 0
    classes: dict = {}
    for _ in range(args.programs):
        program = generate(rng)
        tf_outcome, gt_outcome = execute(tf_ns, program), execute(gt_ns, program)
        found = compare(program, tf_outcome, gt_outcome)
        if not found:
            agreed += 1
            both_raised += isinstance(tf_outcome.forward, Raised)
        for klass, detail in dict(found).items():  # each class once per program
            classes.setdefault(klass, []).append((len(program.source()), program, detail))
    print(f"programs run: {args.programs} (seed {args.seed})")
    print(f"agreements:   {agreed} (of which both raised in the forward pass: {both_raised})")
    print(f"disagreeing:  {args.programs - agreed}")
    for klass, cases in sorted(classes.items(), key=lambda item: -len(item[1])):
        print(f"  {len(cases):4d}  {klass}")
    for klass, cases in sorted(classes.items(), key=lambda item: -len(item[1])):
        for _, program, detail in sorted(cases, key=lambda case: case[0])[:args.show]:
            print(f"\n== {klass} ({len(cases)} programs); shortest example:")
            print(program.source())
            print(f"-- {detail}")
    return 1 if classes else 0


if __name__ == "__main__":
    raise SystemExit(main())
