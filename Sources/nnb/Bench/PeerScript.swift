/// The peers of `nnb bench`, as one Python script: `numpy` is a plain numpy MLP (forward and
/// backward written out with `@`, so OpenBLAS does the products), `torch` is the same
/// network in PyTorch, `jax` the same again under jax.jit (the whole step, gradient and update,
/// one compiled function). All train the 784-256-128-10 ReLU network with softmax cross-entropy
/// on the first N Fashion-MNIST training images (read from the IDX files, or random data for
/// "random"), with PyTorch's initialization and update rules (SGD: p -= lr g; Adam as
/// torch.optim.Adam), shuffling each epoch as nnb does.
///
/// Arguments: mode images labels samples batch threads repeats optimizer. Output: one line per
/// timed epoch, its seconds, after an untimed warm-up of 20 batches.
/// The start of both peer scripts: `load(images, labels, n, shape)` reads the first n images of
/// an IDX file pair as float32 pixels / 255 of (n, *shape) and int64 labels, or makes seeded
/// uniform random images and labels when `images` is "random".
let peerDataPrelude = #"""
import gzip, resource, sys, time
import numpy as np


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def load(images, labels, n, shape):
    if images == "random":
        rng = np.random.default_rng(0)
        return rng.random((n,) + shape, dtype=np.float32), rng.integers(0, 10, n).astype(np.int64)
    x = np.frombuffer(read(images), dtype=np.uint8, offset=16).reshape((-1,) + shape)[:n].astype(np.float32) / 255
    return x, np.frombuffer(read(labels), dtype=np.uint8, offset=8)[:n].astype(np.int64)

"""#

let peerScript = peerDataPrelude + #"""
mode, images, labels = sys.argv[1:4]
n, batch, threads, repeats = map(int, sys.argv[4:8])
optimizer = sys.argv[8]
SIZES = [784, 256, 128, 10]
LR = 0.01 if optimizer == "sgd" else 1e-3
x, y = load(images, labels, n, (784,))
n = len(x)


def numpy_trainer():
    rng = np.random.default_rng(1)
    W, B = [], []
    for i in range(3):
        bound = 1 / np.sqrt(SIZES[i])
        W.append(rng.uniform(-bound, bound, (SIZES[i + 1], SIZES[i])).astype(np.float32))
        B.append(rng.uniform(-bound, bound, SIZES[i + 1]).astype(np.float32))
    params = W + B
    m = [np.zeros_like(p) for p in params]
    v = [np.zeros_like(p) for p in params]
    t = [0]

    def step(xb, yb):
        rows = np.arange(len(yb))
        h1 = xb @ W[0].T
        h1 += B[0]
        np.maximum(h1, 0, out=h1)
        h2 = h1 @ W[1].T
        h2 += B[1]
        np.maximum(h2, 0, out=h2)
        p = h2 @ W[2].T
        p += B[2]
        p -= p.max(axis=1, keepdims=True)
        np.exp(p, out=p)
        p /= p.sum(axis=1, keepdims=True)
        loss = -np.log(p[rows, yb]).mean()
        p[rows, yb] -= 1
        p /= len(yb)
        d2 = p @ W[2]
        d2 *= h2 > 0
        d1 = d2 @ W[1]
        d1 *= h1 > 0
        grads = [d1.T @ xb, d2.T @ h1, p.T @ h2, d1.sum(0), d2.sum(0), p.sum(0)]
        if optimizer == "sgd":
            for q, g in zip(params, grads):
                q -= LR * g
        else:
            t[0] += 1
            c1, c2 = 1 - 0.9 ** t[0], 1 - 0.999 ** t[0]
            for q, g, mq, vq in zip(params, grads, m, v):
                mq *= 0.9
                mq += 0.1 * g
                vq *= 0.999
                vq += 0.001 * g * g
                q -= (LR / c1) * mq / (np.sqrt(vq) / np.sqrt(c2) + 1e-8)
        return loss

    rng_order = np.random.default_rng(2)

    def epoch(limit):
        order = rng_order.permutation(n)
        for s in range(0, limit, batch):
            idx = order[s:s + batch]
            step(x[idx], y[idx])

    return epoch


def torch_trainer():
    import torch
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    model = torch.nn.Sequential(
        torch.nn.Linear(784, 256), torch.nn.ReLU(),
        torch.nn.Linear(256, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 10))
    opt = torch.optim.SGD(model.parameters(), lr=LR) if optimizer == "sgd" else torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = torch.nn.CrossEntropyLoss()
    X, Y = torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y)

    def epoch(limit):
        order = torch.randperm(n)
        for s in range(0, limit, batch):
            idx = order[s:s + batch]
            opt.zero_grad()
            loss = loss_fn(model(X[idx]), Y[idx])
            loss.backward()
            opt.step()

    return epoch


def jax_trainer():
    import jax
    import jax.numpy as jnp
    key = jax.random.PRNGKey(1)
    params = []
    for i in range(3):
        key, k1, k2 = jax.random.split(key, 3)
        bound = 1 / np.sqrt(SIZES[i])
        params.append((jax.random.uniform(k1, (SIZES[i + 1], SIZES[i]), minval=-bound, maxval=bound),
                       jax.random.uniform(k2, (SIZES[i + 1],), minval=-bound, maxval=bound)))

    def loss_fn(params, xb, yb):
        h = xb
        for i, (w, b) in enumerate(params):
            h = h @ w.T + b
            if i < 2:
                h = jnp.maximum(h, 0)
        logp = jax.nn.log_softmax(h)
        return -jnp.take_along_axis(logp, yb[:, None], axis=1).mean()

    @jax.jit
    def sgd_step(params, xb, yb):
        g = jax.grad(loss_fn)(params, xb, yb)
        return jax.tree_util.tree_map(lambda p, d: p - LR * d, params, g)

    @jax.jit
    def adam_step(params, m, v, t, xb, yb):
        g = jax.grad(loss_fn)(params, xb, yb)
        t = t + 1
        m = jax.tree_util.tree_map(lambda a, d: 0.9 * a + 0.1 * d, m, g)
        v = jax.tree_util.tree_map(lambda a, d: 0.999 * a + 0.001 * d * d, v, g)
        c1, c2 = 1 - 0.9 ** t, 1 - 0.999 ** t
        params = jax.tree_util.tree_map(lambda p, a, b: p - LR * (a / c1) / (jnp.sqrt(b / c2) + 1e-8), params, m, v)
        return params, m, v, t

    state = {"p": params, "m": jax.tree_util.tree_map(jnp.zeros_like, params),
             "v": jax.tree_util.tree_map(jnp.zeros_like, params), "t": jnp.float32(0)}
    X, Y = jnp.asarray(x), jnp.asarray(y.astype(np.int32))
    rng = np.random.default_rng(2)

    def epoch(limit):
        order = rng.permutation(n)
        for s in range(0, limit, batch):
            idx = order[s:min(s + batch, limit)]
            if optimizer == "sgd":
                state["p"] = sgd_step(state["p"], X[idx], Y[idx])
            else:
                state["p"], state["m"], state["v"], state["t"] = adam_step(
                    state["p"], state["m"], state["v"], state["t"], X[idx], Y[idx])
        jax.block_until_ready(state["p"])

    return epoch


epoch = {"numpy": numpy_trainer, "torch": torch_trainer, "jax": jax_trainer}[mode]()
# Warm-up: 20 batches, and the epoch's last, smaller batch (JAX compiles a step per shape).
epoch(min(n, 20 * batch))
if n % batch:
    epoch(n % batch)
for _ in range(repeats):
    start = time.perf_counter()
    epoch(n)
    print(time.perf_counter() - start, flush=True)
"""#
