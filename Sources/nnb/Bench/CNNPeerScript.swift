/// The peers of `nnb bench --cnn`, as one Python script: `torch` builds the model with
/// torch.nn (Conv2d, ReLU, BatchNorm2d, MaxPool2d, Dropout, Flatten, Linear) and torch.optim.Adam;
/// `jax` writes the same network with jax.lax (conv_general_dilated, reduce_window), batch
/// statistics and running averages as BatchNorm2d keeps them, inverted dropout, and Adam by
/// hand, the whole step under jax.jit. Both train with softmax cross-entropy, Adam lr 0.001, on
/// the first N Fashion-MNIST training images ((N, 1, 28, 28), pixels / 255; random data for
/// "random"), shuffling each epoch, PyTorch's uniform initialization.
///
/// MODELS must stay the networks of `CNNBench.models`, layer for layer.
///
/// Arguments: mode model images labels samples batch threads repeats latency-runs. Output: one
/// line per timed epoch (its seconds, after an untimed warm-up of 20 batches and of the epoch's
/// last, smaller batch, so that JAX has compiled every step it runs), then `rss_kib K` (the
/// process's peak resident set), then with latency-runs > 0 `latency_us U`: the median time of
/// one-image predictions in eval mode.
let cnnPeerScript = peerDataPrelude + #"""
mode, model_name, images, labels = sys.argv[1:5]
n, batch, threads, repeats, latency_runs = map(int, sys.argv[5:10])
LR = 1e-3
x, y = load(images, labels, n, (1, 28, 28))
n = len(x)

# The two models, as nnb builds them from its descriptions (Sources/nnb/Bench/CNNBench.swift):
# (kind, settings) per layer.
MODELS = {
    "cnn": [("conv", 1, 16, 3, 1), ("relu",), ("bn", 16), ("maxpool", 2),
            ("conv", 16, 32, 3, 1), ("relu",), ("bn", 32), ("maxpool", 2),
            ("flatten",), ("linear", 1568, 128), ("relu",), ("dropout", 0.5), ("linear", 128, 10)],
    "lenet5": [("conv", 1, 6, 5, 2), ("relu",), ("maxpool", 2), ("conv", 6, 16, 5, 0), ("relu",), ("maxpool", 2),
               ("flatten",), ("linear", 400, 120), ("relu",), ("linear", 120, 84), ("relu",), ("linear", 84, 10)],
}
spec = MODELS[model_name]


def torch_peer():
    import torch
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    nn = torch.nn
    layers = []
    for s in spec:
        k = s[0]
        if k == "conv": layers.append(nn.Conv2d(s[1], s[2], s[3], padding=s[4]))
        elif k == "relu": layers.append(nn.ReLU())
        elif k == "bn": layers.append(nn.BatchNorm2d(s[1]))
        elif k == "maxpool": layers.append(nn.MaxPool2d(s[1]))
        elif k == "dropout": layers.append(nn.Dropout(s[1]))
        elif k == "flatten": layers.append(nn.Flatten())
        elif k == "linear": layers.append(nn.Linear(s[1], s[2]))
    model = nn.Sequential(*layers)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    X, Y = torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y)

    def epoch(limit):
        model.train()
        order = torch.randperm(n)
        for s in range(0, limit, batch):
            idx = order[s:min(s + batch, limit)]
            opt.zero_grad()
            loss_fn(model(X[idx]), Y[idx]).backward()
            opt.step()

    def predict_one(i):
        with torch.no_grad():
            return model(X[i:i + 1])

    def eval_mode():
        model.eval()

    return epoch, predict_one, eval_mode


def jax_peer():
    import jax
    import jax.numpy as jnp
    key = jax.random.PRNGKey(1)
    params, shapes = [], []
    c_h = (1, 28, 28)
    for s in spec:
        k = s[0]
        if k == "conv":
            key, k1, k2 = jax.random.split(key, 3)
            bound = 1 / np.sqrt(s[1] * s[3] * s[3])
            params.append({"w": jax.random.uniform(k1, (s[2], s[1], s[3], s[3]), minval=-bound, maxval=bound),
                           "b": jax.random.uniform(k2, (s[2],), minval=-bound, maxval=bound)})
        elif k == "linear":
            key, k1, k2 = jax.random.split(key, 3)
            bound = 1 / np.sqrt(s[1])
            params.append({"w": jax.random.uniform(k1, (s[2], s[1]), minval=-bound, maxval=bound),
                           "b": jax.random.uniform(k2, (s[2],), minval=-bound, maxval=bound)})
        elif k == "bn":
            params.append({"g": jnp.ones(s[1]), "b": jnp.zeros(s[1])})
        else:
            params.append({})
    stats = [{"m": jnp.zeros(s[1]), "v": jnp.ones(s[1])} if s[0] == "bn" else {} for s in spec]

    def forward(params, stats, xb, key, train):
        h = xb
        new_stats = []
        for s, p, st in zip(spec, params, stats):
            k = s[0]
            if k == "conv":
                h = jax.lax.conv_general_dilated(h, p["w"], (1, 1), [(s[4], s[4])] * 2,
                                                 dimension_numbers=("NCHW", "OIHW", "NCHW")) + p["b"][None, :, None, None]
            elif k == "relu":
                h = jnp.maximum(h, 0)
            elif k == "bn":
                if train:
                    mean = h.mean(axis=(0, 2, 3))
                    var = h.var(axis=(0, 2, 3))
                    cnt = h.shape[0] * h.shape[2] * h.shape[3]
                    st = {"m": 0.9 * st["m"] + 0.1 * mean, "v": 0.9 * st["v"] + 0.1 * var * cnt / (cnt - 1)}
                else:
                    mean, var = st["m"], st["v"]
                h = (h - mean[None, :, None, None]) / jnp.sqrt(var[None, :, None, None] + 1e-5)
                h = h * p["g"][None, :, None, None] + p["b"][None, :, None, None]
            elif k == "maxpool":
                h = jax.lax.reduce_window(h, -jnp.inf, jax.lax.max, (1, 1, s[1], s[1]), (1, 1, s[1], s[1]), "VALID")
            elif k == "dropout":
                if train:
                    key, sub = jax.random.split(key)
                    keep = jax.random.bernoulli(sub, 1 - s[1], h.shape)
                    h = jnp.where(keep, h / (1 - s[1]), 0)
            elif k == "flatten":
                h = h.reshape(h.shape[0], -1)
            elif k == "linear":
                h = h @ p["w"].T + p["b"]
            new_stats.append(st)
        return h, new_stats

    def loss_fn(params, stats, xb, yb, key):
        logits, new_stats = forward(params, stats, xb, key, True)
        logp = jax.nn.log_softmax(logits)
        return -jnp.take_along_axis(logp, yb[:, None], axis=1).mean(), new_stats

    @jax.jit
    def step(params, stats, m, v, t, xb, yb, key):
        (loss, new_stats), g = jax.value_and_grad(loss_fn, has_aux=True)(params, stats, xb, yb, key)
        t = t + 1
        m = jax.tree_util.tree_map(lambda a, b: 0.9 * a + 0.1 * b, m, g)
        v = jax.tree_util.tree_map(lambda a, b: 0.999 * a + 0.001 * b * b, v, g)
        c1, c2 = 1 - 0.9 ** t, 1 - 0.999 ** t
        params = jax.tree_util.tree_map(lambda p, a, b: p - LR * (a / c1) / (jnp.sqrt(b / c2) + 1e-8), params, m, v)
        return params, new_stats, m, v, t, loss

    state = {"p": params, "s": stats, "m": jax.tree_util.tree_map(jnp.zeros_like, params),
             "v": jax.tree_util.tree_map(jnp.zeros_like, params), "t": jnp.float32(0), "key": jax.random.PRNGKey(2)}
    X, Y = jnp.asarray(x), jnp.asarray(y.astype(np.int32))
    rng = np.random.default_rng(2)

    def epoch(limit):
        order = rng.permutation(n)
        loss = None
        for s in range(0, limit, batch):
            idx = order[s:min(s + batch, limit)]
            state["key"], sub = jax.random.split(state["key"])
            state["p"], state["s"], state["m"], state["v"], state["t"], loss = step(
                state["p"], state["s"], state["m"], state["v"], state["t"], X[idx], Y[idx], sub)
        loss.block_until_ready()

    infer = jax.jit(lambda p, st, xb: forward(p, st, xb, None, False)[0])

    def predict_one(i):
        return infer(state["p"], state["s"], x[i:i + 1]).block_until_ready()

    return epoch, predict_one, lambda: None


epoch, predict_one, eval_mode = torch_peer() if mode == "torch" else jax_peer()
# Warm-up: 20 batches, and the epoch's last, smaller batch (JAX compiles a step per shape).
epoch(min(n, 20 * batch))
if n % batch:
    epoch(n % batch)
for _ in range(repeats):
    start = time.perf_counter()
    epoch(n)
    print(time.perf_counter() - start, flush=True)
print("rss_kib", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, flush=True)
if latency_runs > 0:
    eval_mode()
    for i in range(50):
        predict_one(i)
    times = []
    for i in range(latency_runs):
        t0 = time.perf_counter()
        predict_one(i % n)
        times.append(time.perf_counter() - t0)
    times.sort()
    print("latency_us", times[len(times) // 2] * 1e6, flush=True)
"""#
