"""The same workloads written in other frameworks, for side-by-side timings (``--peers``).

Each peer is optional: one that is not installed is skipped, with a note. Peers run on the CPU
(PyTorch also on CUDA when it sees a GPU), each in its own process. Inputs match the gputape
workloads: float32, random, the same shapes. The peers: PyTorch, JAX, TensorFlow and HIPS
autograd (``autograd``, NumPy traced by a tape, the closest in design to gputape on the host).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np


def _inputs(size, rng, n=2):
    return [rng.uniform(0.5, 1.5, size).astype(np.float32) for _ in range(n)]


def _jacobian_matrix(rng):
    """jacobian_256's matrix: ``w @ x`` near 1, where tanh is not flat (as in the workload)."""
    return rng.uniform(0.5 / 256, 1.5 / 256, (256, 256)).astype(np.float32)


def _mlp_data(rng):
    images = rng.uniform(0.0, 1.0, (256, 784)).astype(np.float32)
    labels = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 256)]
    params = [rng.normal(0, 0.05, (784, 512)).astype(np.float32),
              np.full(512, 0.01, np.float32),
              rng.normal(0, 0.05, (512, 10)).astype(np.float32),
              np.full(10, 0.01, np.float32)]
    return images, labels, params


# -- PyTorch ------------------------------------------------------------------------------


def _torch_builders(device: str):
    import torch

    dev = torch.device("cuda" if device.startswith("gpu") else "cpu")

    def t(a, grad=False):
        return torch.tensor(a, device=dev, requires_grad=grad)

    def tiny_chain(size, rng):
        x = t(_inputs(16, rng, 1)[0], True)

        def run():
            y = x
            for _ in range(50):
                y = torch.sin(y) * x + x
            return torch.autograd.grad(y.sum(), x)

        return run

    def two_input(expression):
        def build(size, rng):
            x, y = (t(a, True) for a in _inputs(size, rng))
            return lambda: torch.autograd.grad(expression(x, y), [x, y])

        return build

    def sum_pow(size, rng):
        x = t(_inputs(size, rng, 1)[0], True)
        return lambda: torch.autograd.grad((x**3).sum(), x)

    def mlp_step(size, rng):
        images, labels, params = _mlp_data(rng)
        images, labels = t(images), t(labels)
        params = [t(p, True) for p in params]
        opt = torch.optim.SGD(params, lr=0.01)

        def run():
            w1, b1, w2, b2 = params
            logits = torch.relu(images @ w1 + b1) @ w2 + b2
            loss = -(labels * torch.log_softmax(logits, -1)).sum(-1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss

        return run

    def cnn_step(size, rng):
        from .workloads import cnn_data

        images, labels, values = cnn_data(rng)
        images, labels = t(np.transpose(images, (0, 3, 1, 2))), t(labels)  # NCHW
        c1, b1, c2, b2, w, b = values
        params = [t(np.transpose(c1, (3, 2, 0, 1)), True), t(b1, True),
                  t(np.transpose(c2, (3, 2, 0, 1)), True), t(b2, True), t(w, True), t(b, True)]
        opt = torch.optim.SGD(params, lr=0.01)
        f = torch.nn.functional

        def run():
            k1, d1, k2, d2, dense, bias = params
            h = f.max_pool2d(torch.relu(f.conv2d(images, k1, d1, padding="same")), 2)
            h = f.max_pool2d(torch.relu(f.conv2d(h, k2, d2, padding="same")), 2)
            logits = h.permute(0, 2, 3, 1).reshape(64, 784) @ dense + bias
            loss = -(labels * torch.log_softmax(logits, -1)).sum(-1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            return loss

        return run

    def third_derivative(size, rng):
        x = t(np.linspace(-2 * np.pi, 2 * np.pi, 1000, dtype=np.float32), True)

        def run():
            y = torch.sin(x) ** 2
            for _ in range(3):
                (y,) = torch.autograd.grad(y.sum(), x, create_graph=True)
            return y

        return run

    def hessian_64(size, rng):
        x = t(_inputs(64, rng, 1)[0])
        a = t(rng.uniform(0.5, 1.5, (64, 64)).astype(np.float32))
        return lambda: torch.autograd.functional.hessian(lambda v: (torch.sin(a @ v) * v).sum(), x,
                                                         vectorize=True)

    def jacobian_256(size, rng):
        x = t(_inputs(256, rng, 1)[0])
        w = t(_jacobian_matrix(rng))
        return lambda: torch.autograd.functional.jacobian(lambda v: torch.tanh(w @ v) * v, x,
                                                          vectorize=True)

    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    return {
        "tiny_chain": tiny_chain,
        "elementwise_grad": two_input(lambda x, y: (x * y + x**3 * torch.sin(y)).sum()),
        "sum_xy": two_input(lambda x, y: (x * y).sum()),
        "sum_pow": sum_pow, "mlp_step": mlp_step, "third_derivative": third_derivative,
        "hessian_64": hessian_64, "jacobian_256": jacobian_256, "cnn_step": cnn_step,
    }, sync


# -- JAX ----------------------------------------------------------------------------------


def _jax_builders(device: str):
    import jax
    import jax.numpy as jnp

    def block(fn):
        return lambda: jax.block_until_ready(fn())

    def tiny_chain(size, rng):
        x = jnp.asarray(_inputs(16, rng, 1)[0])

        def f(v):
            y = v
            for _ in range(50):
                y = jnp.sin(y) * v + v
            return y.sum()

        g = jax.grad(f)  # eager (not jitted): the per-op overhead is what this measures
        return block(lambda: g(x))

    def two_input(expression):
        def build(size, rng):
            x, y = (jnp.asarray(a) for a in _inputs(size, rng))
            g = jax.grad(expression, argnums=(0, 1))
            return block(lambda: g(x, y))

        return build

    def third_derivative(size, rng):
        x = jnp.linspace(-2 * jnp.pi, 2 * jnp.pi, 1000, dtype=jnp.float32)
        d3 = jax.vmap(jax.grad(jax.grad(jax.grad(lambda v: jnp.sin(v) ** 2))))
        return block(lambda: d3(x))

    def hessian_64(size, rng):
        x = jnp.asarray(_inputs(64, rng, 1)[0])
        a = jnp.asarray(rng.uniform(0.5, 1.5, (64, 64)).astype(np.float32))
        h = jax.hessian(lambda v: (jnp.sin(a @ v) * v).sum())
        return block(lambda: h(x))

    def jacobian_256(size, rng):
        x = jnp.asarray(_inputs(256, rng, 1)[0])
        w = jnp.asarray(_jacobian_matrix(rng))
        j = jax.jacrev(lambda v: jnp.tanh(w @ v) * v)
        return block(lambda: j(x))

    return {
        "tiny_chain": tiny_chain,
        "elementwise_grad": two_input(lambda x, y: (x * y + x**3 * jnp.sin(y)).sum()),
        "sum_xy": two_input(lambda x, y: (x * y).sum()),
        "third_derivative": third_derivative, "hessian_64": hessian_64,
        "jacobian_256": jacobian_256,
    }, (lambda: None)


# -- TensorFlow ---------------------------------------------------------------------------


def _tf_builders(device: str):
    import tensorflow as tf

    def tiny_chain(size, rng):
        x = tf.constant(_inputs(16, rng, 1)[0])

        def run():
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = x
                for _ in range(50):
                    y = tf.sin(y) * x + x
                loss = tf.reduce_sum(y)
            return tape.gradient(loss, x)

        return run

    def two_input(expression):
        def build(size, rng):
            x, y = (tf.constant(a) for a in _inputs(size, rng))

            def run():
                with tf.GradientTape() as tape:
                    tape.watch([x, y])
                    loss = expression(x, y)
                return tape.gradient(loss, [x, y])

            return run

        return build

    def mlp_step(size, rng):
        images, labels, params = _mlp_data(rng)
        images, labels = tf.constant(images), tf.constant(labels)
        params = [tf.Variable(p) for p in params]
        opt = tf.keras.optimizers.SGD(learning_rate=0.01)

        def run():
            w1, b1, w2, b2 = params
            with tf.GradientTape() as tape:
                logits = tf.nn.relu(images @ w1 + b1) @ w2 + b2
                loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels, logits))
            opt.apply_gradients(zip(tape.gradient(loss, params), params))
            return loss

        return run

    def cnn_step(size, rng):
        from .workloads import cnn_data

        images, labels, values = cnn_data(rng)
        images, labels = tf.constant(images), tf.constant(labels)
        params = [tf.Variable(v) for v in values]
        opt = tf.keras.optimizers.SGD(learning_rate=0.01)

        def run():
            c1, b1, c2, b2, w, b = params
            with tf.GradientTape() as tape:
                h = tf.nn.max_pool2d(tf.nn.relu(tf.nn.conv2d(images, c1, 1, "SAME") + b1),
                                     2, 2, "VALID")
                h = tf.nn.max_pool2d(tf.nn.relu(tf.nn.conv2d(h, c2, 1, "SAME") + b2),
                                     2, 2, "VALID")
                logits = tf.reshape(h, (64, 784)) @ w + b
                loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(labels, logits))
            opt.apply_gradients(zip(tape.gradient(loss, params), params))
            return loss

        return run

    def third_derivative(size, rng):
        x = tf.constant(np.linspace(-2 * np.pi, 2 * np.pi, 1000, dtype=np.float32))

        def run():
            with tf.GradientTape() as t3:
                t3.watch(x)
                with tf.GradientTape() as t2:
                    t2.watch(x)
                    with tf.GradientTape() as t1:
                        t1.watch(x)
                        y = tf.square(tf.sin(x))
                    d1 = t1.gradient(y, x)
                d2 = t2.gradient(d1, x)
            return t3.gradient(d2, x)

        return run

    def sum_pow(size, rng):
        x = tf.constant(_inputs(size, rng, 1)[0])

        def run():
            with tf.GradientTape() as tape:
                tape.watch(x)
                loss = tf.reduce_sum(x**3)
            return tape.gradient(loss, x)

        return run

    def hessian_64(size, rng):
        x = tf.constant(_inputs(64, rng, 1)[0])
        a = tf.constant(rng.uniform(0.5, 1.5, (64, 64)).astype(np.float32))

        def run():  # nested tapes + jacobian, as tf.GradientTape's guide computes Hessians
            with tf.GradientTape() as outer:
                outer.watch(x)
                with tf.GradientTape() as inner:
                    inner.watch(x)
                    y = tf.reduce_sum(tf.sin(tf.linalg.matvec(a, x)) * x)
                g = inner.gradient(y, x)
            return outer.jacobian(g, x)

        return run

    def jacobian_256(size, rng):
        x = tf.constant(_inputs(256, rng, 1)[0])
        w = tf.constant(_jacobian_matrix(rng))

        def run():
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = tf.tanh(tf.linalg.matvec(w, x)) * x
            return tape.jacobian(y, x)

        return run

    return {
        "tiny_chain": tiny_chain,
        "elementwise_grad": two_input(lambda x, y: tf.reduce_sum(x * y + x**3 * tf.sin(y))),
        "sum_xy": two_input(lambda x, y: tf.reduce_sum(x * y)),
        "sum_pow": sum_pow, "mlp_step": mlp_step, "third_derivative": third_derivative,
        "hessian_64": hessian_64, "jacobian_256": jacobian_256, "cnn_step": cnn_step,
    }, (lambda: None)


# -- HIPS autograd ------------------------------------------------------------------------


def _autograd_builders(device: str):
    import autograd
    import autograd.numpy as anp

    def tiny_chain(size, rng):
        x = _inputs(16, rng, 1)[0]

        def f(v):
            y = v
            for _ in range(50):
                y = anp.sin(y) * v + v
            return anp.sum(y)

        g = autograd.grad(f)
        return lambda: g(x)

    def two_input(expression):
        def build(size, rng):
            x, y = _inputs(size, rng)
            g = autograd.grad(lambda pair: expression(*pair))
            return lambda: g((x, y))

        return build

    def sum_pow(size, rng):
        x = _inputs(size, rng, 1)[0]
        g = autograd.grad(lambda v: anp.sum(v**3))
        return lambda: g(x)

    def mlp_step(size, rng):
        images, labels, params = _mlp_data(rng)

        def loss(ps):
            w1, b1, w2, b2 = ps
            logits = anp.maximum(anp.dot(images, w1) + b1, 0.0) @ w2 + b2
            shifted = logits - anp.max(logits, axis=-1, keepdims=True)
            log_p = shifted - anp.log(anp.sum(anp.exp(shifted), axis=-1, keepdims=True))
            return -anp.mean(anp.sum(labels * log_p, axis=-1))

        value_and_grad = autograd.value_and_grad(loss)

        def run():
            value, grads = value_and_grad(params)
            params[:] = [p - np.float32(0.01) * g for p, g in zip(params, grads)]
            return value

        return run

    def third_derivative(size, rng):
        x = np.linspace(-2 * np.pi, 2 * np.pi, 1000, dtype=np.float32)
        d1 = autograd.elementwise_grad(lambda v: anp.sin(v) ** 2)
        d3 = autograd.elementwise_grad(autograd.elementwise_grad(d1))
        return lambda: d3(x)

    def hessian_64(size, rng):
        x = _inputs(64, rng, 1)[0]
        a = rng.uniform(0.5, 1.5, (64, 64)).astype(np.float32)
        h = autograd.hessian(lambda v: anp.sum(anp.sin(anp.dot(a, v)) * v))
        return lambda: h(x)

    def jacobian_256(size, rng):
        x = _inputs(256, rng, 1)[0]
        w = _jacobian_matrix(rng)
        j = autograd.jacobian(lambda v: anp.tanh(anp.dot(w, v)) * v)
        return lambda: j(x)

    return {
        "tiny_chain": tiny_chain,
        "elementwise_grad": two_input(lambda x, y: anp.sum(x * y + x**3 * anp.sin(y))),
        "sum_xy": two_input(lambda x, y: anp.sum(x * y)),
        "sum_pow": sum_pow, "mlp_step": mlp_step, "third_derivative": third_derivative,
        "hessian_64": hessian_64, "jacobian_256": jacobian_256,
    }, (lambda: None)


def _torch_sees_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


PEERS = {"torch": ("torch", _torch_builders), "jax": ("jax", _jax_builders),
         "tensorflow": ("tensorflow", _tf_builders), "autograd": ("autograd", _autograd_builders)}


def requested(names: str = "all") -> "list[str]":
    """The peer names ``names`` asks for ('all' or comma-separated); unknown names are refused.

    Example: ``requested("jax,torch") == ["jax", "torch"]``.
    """
    wanted = list(PEERS) if names == "all" else [n.strip() for n in names.split(",") if n.strip()]
    unknown = sorted(set(wanted) - set(PEERS))
    if unknown:
        raise SystemExit(f"bench: unknown peer(s) {unknown}; known: {sorted(PEERS)}")
    return wanted


def installed(names: str = "all") -> "list[str]":
    """The peers (all, or those in the comma-separated ``names``) importable here.

    Example: ``set(installed()) <= set(PEERS)``.
    """
    return [name for name in requested(names)
            if importlib.util.find_spec(PEERS[name][0]) is not None]


class PeerProcess:
    """Peer ``name`` in a process of its own (its thread pools and allocator never share one with
    gputape or another peer), timing one sample at a time on request: the runner alternates
    gputape's samples with each peer's (A B A B), so drift on a busy machine hits them alike.

    ``sample(workload, size, device)`` returns ``(seconds per call, loops)``, or None where the
    peer lacks the workload or the device, or failed (said once).
    """

    def __init__(self, name: str) -> None:
        import tempfile

        from .children import child_env

        root, env = child_env()
        self.name = name
        self.failed = False
        self._errors = tempfile.TemporaryFile(mode="w+")  # a pipe could fill up and block it
        self._process = subprocess.Popen(
            [sys.executable, "-m", "gputape.bench.peers", name], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._errors, text=True, env=env, cwd=root, bufsize=1)

    def sample(self, workload: str, size: int, device: str) -> "tuple | None":
        if self.failed:
            return None
        try:
            self._process.stdin.write(json.dumps([workload, size, device]) + "\n")
            self._process.stdin.flush()
            reply = self._process.stdout.readline()
        except (BrokenPipeError, OSError):
            reply = ""
        if not reply:
            self.failed = True
            self._errors.seek(0)
            tail = self._errors.read().strip().splitlines()[-1:] or ["no output"]
            print(f"bench: peer {self.name} failed: {tail[0]}")
            return None
        found = json.loads(reply)
        return None if found is None else tuple(found)

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.stdin.close()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._errors.close()


def _serve(name: str, lines, out) -> None:
    """The peer's side: for each request line ``[workload, size, device]``, one sample, as a
    JSON line ``[seconds per call, loops]`` (``null`` where the peer lacks it). The workload of
    the latest request stays built (and warmed up) for the next one."""
    from .timing import Sampler

    rng = np.random.default_rng(0)
    started: dict = {}
    current, take = None, None
    for line in lines:
        key = tuple(json.loads(line))
        if key != current:
            current, take = key, None
            workload, size, device = key
            if device not in started:
                started[device] = _start(name, device)
            if started[device] is not None and workload in started[device][0]:
                builders, sync = started[device]
                take = Sampler(builders[workload](size, rng), device, sync=sync)
        out.write(json.dumps(None if take is None else [take(), take.loops]) + "\n")
        out.flush()


def _start(name: str, device: str):
    if device != "cpu" and (name != "torch" or not _torch_sees_cuda()):
        return None
    return PEERS[name][1](device)


if __name__ == "__main__":
    _serve(sys.argv[1], sys.stdin, sys.stdout)
