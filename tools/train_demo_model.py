#!/usr/bin/env python3
"""Train the demo model shipped with codec: an MLP 64-64-32-10 on scikit-learn's digits data set.

Pure numpy (Adam, cross-entropy, fixed seed); writes codec/data/digits_mlp.npz with the float32
weights and the held-out test split (inputs 0..16 as uint8, labels). Needs scikit-learn (only to
load the bundled data set; no network). Run: python tools/train_demo_model.py
"""

import os
import sys

import numpy as np


def main() -> int:
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = digits.data.astype(np.float32) / 16.0
    y = digits.target.astype(np.int64)
    rng = np.random.default_rng(20261121)
    order = rng.permutation(len(x))
    test, train = order[:360], order[360:]
    sizes = [64, 64, 32, 10]
    params = {}
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        params[f"fc{i}.weight"] = (rng.standard_normal((b, a)) * np.sqrt(2.0 / a)).astype(np.float32)
        params[f"fc{i}.bias"] = np.zeros(b, np.float32)
    m = {k: np.zeros_like(v) for k, v in params.items()}
    v = {k: np.zeros_like(v) for k, v in params.items()}
    lr, b1, b2 = 1e-3, 0.9, 0.999
    step = 0
    for epoch in range(60):
        for batch in np.array_split(rng.permutation(train), len(train) // 32):
            step += 1
            h = [x[batch]]
            for i in range(1, 4):
                z = h[-1] @ params[f"fc{i}.weight"].T + params[f"fc{i}.bias"]
                h.append(np.maximum(z, 0) if i < 3 else z)
            logits = h[-1] - h[-1].max(axis=1, keepdims=True)
            p = np.exp(logits)
            p /= p.sum(axis=1, keepdims=True)
            grad = p
            grad[np.arange(len(batch)), y[batch]] -= 1
            grad /= len(batch)
            for i in range(3, 0, -1):
                gw = grad.T @ h[i - 1]
                gb = grad.sum(axis=0)
                grad = (grad @ params[f"fc{i}.weight"]) * (h[i - 1] > 0)
                for key, g in ((f"fc{i}.weight", gw), (f"fc{i}.bias", gb)):
                    m[key] = b1 * m[key] + (1 - b1) * g
                    v[key] = b2 * v[key] + (1 - b2) * g * g
                    mh = m[key] / (1 - b1 ** step)
                    vh = v[key] / (1 - b2 ** step)
                    params[key] = (params[key] - lr * mh / (np.sqrt(vh) + 1e-8)).astype(np.float32)
    out = x[test]
    for i in range(1, 4):
        out = out @ params[f"fc{i}.weight"].T + params[f"fc{i}.bias"]
        out = np.maximum(out, 0) if i < 3 else out
    accuracy = float((out.argmax(axis=1) == y[test]).mean())
    path = os.path.join(os.path.dirname(__file__), "..", "codec", "data", "digits_mlp.npz")
    np.savez_compressed(path, **params, x_test=digits.data[test].astype(np.uint8), y_test=y[test].astype(np.uint8))
    print(f"test accuracy {accuracy:.4f}; wrote {os.path.normpath(path)} ({os.path.getsize(path):,} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
