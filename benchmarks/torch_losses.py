"""Cross-check of the MNIST ball's losses against PyTorch float64 (an independent implementation).

Two steps, one per environment: the gdchaos one trains the paper's ball (784-64-10 tanh, 6
networks, eta = 10, eps = 1e-8) for a few epochs and saves the initial parameters, the data and
the loss of every network at every epoch; the PyTorch one (``pip install torch``) trains the same
networks from the same parameters with autograd and prints the largest relative difference of
the losses per epoch.

    python benchmarks/torch_losses.py gdchaos FILE.npz [--epochs 8] [--data-dir DIR]
    TORCH_PYTHON benchmarks/torch_losses.py torch FILE.npz
"""
from __future__ import annotations

import argparse

import numpy as np

ETA = 10.0


def run_gdchaos(path: str, epochs: int, data_dir: str | None) -> None:
    """Save theta_0 (6, P), x, y and the losses (epochs + 1, 6) of gdchaos's GD."""
    from gdchaos import data
    from gdchaos.engine.train import train
    from gdchaos.nn import MLP

    x, y, _, _ = data.load("mnist", data_dir)
    model = MLP((784, 64, 10), activation="tanh")
    rng = np.random.default_rng(0)
    reference = model.init(rng, 1)
    noise = rng.uniform(-1e-8, 1e-8, size=(5, model.n_params)) * model.weight_mask()
    theta = np.concatenate([reference, reference + noise])
    theta0 = theta.copy()
    losses = [np.array(record.loss) for record in train(model, theta, ETA, x, y, epochs)]
    np.savez(path, theta0=theta0, x=x, y=y, losses=np.array(losses))
    print(f"saved {path}: reference loss per epoch {np.round(np.array(losses)[:, 0], 6)}")


def run_torch(path: str) -> None:
    """Train the saved networks with PyTorch float64 autograd and compare the losses."""
    import torch

    saved = np.load(path)
    x, y = torch.tensor(saved["x"], dtype=torch.float64), torch.tensor(saved["y"])
    theta0, losses = saved["theta0"], saved["losses"]
    shapes = [(784, 64), (64,), (64, 10), (10,)]  # gdchaos's flat layout: W1, b1, W2, b2
    ours = np.empty_like(losses)
    for r, flat in enumerate(theta0):
        params, offset = [], 0
        for shape in shapes:
            size = int(np.prod(shape))
            params.append(torch.tensor(flat[offset:offset + size].reshape(shape), requires_grad=True))
            offset += size
        for epoch in range(losses.shape[0]):
            logits = torch.tanh(x @ params[0] + params[1]) @ params[2] + params[3]
            loss = torch.nn.functional.cross_entropy(logits, y)
            ours[epoch, r] = loss.item()
            if epoch < losses.shape[0] - 1:
                grads = torch.autograd.grad(loss, params)
                with torch.no_grad():
                    for p, g in zip(params, grads):
                        p -= ETA * g
    relative = np.abs(ours - losses) / np.abs(ours)
    print("PyTorch reference loss per epoch", np.round(ours[:, 0], 6))
    print("largest relative difference per epoch", np.array2string(relative.max(axis=1), precision=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("side", choices=("gdchaos", "torch"))
    parser.add_argument("path")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    if args.side == "gdchaos":
        run_gdchaos(args.path, args.epochs, args.data_dir)
    else:
        run_torch(args.path)


if __name__ == "__main__":
    main()
