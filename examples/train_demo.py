"""Train a tiny logistic-regression classifier with numpy and track it with mltrail.

    python examples/train_demo.py                  # writes to ./mlruns
    MLTRAIL_TRACKING_URI=sqlite:///mltrail.db python examples/train_demo.py

Logs the hyper-parameters, the loss and accuracy at every step, the learned weights (JSON and .npy), the loss
curve as a PNG (rendered here with numpy: no plotting library needed) and as an SVG.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

import mltrail


def make_data(rng: np.random.Generator, n: int = 2000, features: int = 5) -> tuple[np.ndarray, np.ndarray]:
    true_w = rng.normal(size=features)
    x = rng.normal(size=(n, features))
    y = (x @ true_w + 0.5 * rng.normal(size=n) > 0).astype(float)
    return x, y


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def render_curve(values: list[float], height: int = 120, width: int = 320) -> np.ndarray:
    """A white RGB image with the curve drawn in blue, scaled to fill the canvas."""
    image = np.ones((height, width, 3))
    v = np.asarray(values)
    xs = np.linspace(0, width - 1, len(v)).astype(int)
    span = v.max() - v.min() or 1.0
    ys = ((1 - (v - v.min()) / span) * (height - 1)).astype(int)
    for x0, y0, x1, y1 in zip(xs[:-1], ys[:-1], xs[1:], ys[1:], strict=True):
        for t in np.linspace(0, 1, max(abs(x1 - x0), abs(y1 - y0), 1) + 1):
            image[round(y0 + t * (y1 - y0)), round(x0 + t * (x1 - x0))] = (0.1, 0.3, 0.9)
    return image


def svg_curve(values: list[float], height: int = 120, width: int = 320) -> str:
    v = np.asarray(values)
    span = v.max() - v.min() or 1.0
    points = " ".join(
        f"{i * (width - 1) / max(len(v) - 1, 1):.1f},{(1 - (val - v.min()) / span) * (height - 1):.1f}"
        for i, val in enumerate(v)
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">'
        f'<polyline fill="none" stroke="#1a4de6" stroke-width="2" points="{points}"/></svg>\n'
    )


def train(steps: int, learning_rate: float, l2: float, seed: int) -> str:
    rng = np.random.default_rng(seed)
    x, y = make_data(rng)
    weights = np.zeros(x.shape[1])
    bias = 0.0
    losses: list[float] = []
    mltrail.set_experiment("train-demo")
    with mltrail.start_run(description="numpy logistic regression") as run:
        mltrail.log_params({"steps": steps, "learning_rate": learning_rate, "l2": l2, "seed": seed})
        mltrail.set_tag("model", "logistic-regression")
        for step in range(steps):
            p = sigmoid(x @ weights + bias)
            eps = 1e-12
            loss = -np.mean(y * np.log(p + eps) + (1 - y) * np.log(1 - p + eps)) + l2 * weights @ weights
            grad_w = x.T @ (p - y) / len(y) + 2 * l2 * weights
            grad_b = float(np.mean(p - y))
            weights -= learning_rate * grad_w
            bias -= learning_rate * grad_b
            accuracy = float(np.mean((p > 0.5) == y))
            mltrail.log_metrics({"loss": float(loss), "accuracy": accuracy}, step=step)
            losses.append(float(loss))
        mltrail.log_dict({"weights": weights.tolist(), "bias": bias}, "model/weights.json")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp, "weights.npy")
            np.save(path, np.append(weights, bias))
            mltrail.log_artifact(str(path), "model")
        mltrail.log_image(render_curve(losses), "plots/loss.png")
        mltrail.log_text(svg_curve(losses), "plots/loss.svg")
    return run.info.run_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--learning-rate", type=float, default=0.5)
    parser.add_argument("--l2", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    run_id = train(args.steps, args.learning_rate, args.l2, args.seed)
    run = mltrail.get_run(run_id)
    metrics = run.data.metrics
    print(f"run {run_id} {run.info.status}: loss={metrics['loss']:.4f} accuracy={metrics['accuracy']:.3f}")
    print(f"tracking URI: {mltrail.get_tracking_uri()}")


if __name__ == "__main__":
    main()
