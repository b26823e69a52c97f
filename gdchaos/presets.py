"""One preset per figure of the paper, with the paper's parameters (docs/protocol.md, the figures)."""
from __future__ import annotations

from dataclasses import replace

from gdchaos.checks import check_choice
from gdchaos.config import ModelConfig, SweepConfig
from gdchaos.nn.cnn import PAPER_LAYERS

# The authors' learning-rate grid (16 values)
PAPER_ETAS = (0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0, 7.5, 10.0, 12.5, 15.0, 17.5, 20.0)

_IRIS = SweepConfig(dataset="iris", model=ModelConfig(hidden=(10,)), etas=PAPER_ETAS, ics=50,
                    replicas=5, eps=1e-8, epochs=201, target=0.9, tau_epochs=1000)
_MNIST = SweepConfig(dataset="mnist", model=ModelConfig(hidden=(64,)), etas=PAPER_ETAS, ics=50,
                     replicas=5, eps=1e-8, epochs=201, target=0.9, tau_epochs=1000)
_CIFAR = SweepConfig(dataset="cifar10", model=ModelConfig(hidden=(256,)), etas=PAPER_ETAS, ics=50,
                     replicas=5, eps=1e-8, epochs=201, target=0.3, tau_epochs=1000)


_CNN = SweepConfig(dataset="mnist", model=ModelConfig(kind="cnn", hidden=(), activation="relu", init_std=0.01,
                                                   layers=tuple(dict(layer) for layer in PAPER_LAYERS)),
                   etas=PAPER_ETAS, ics=40, replicas=5, eps=1e-8, epochs=201, target=0.8, tau_epochs=2000)


def _with_model(base: SweepConfig, **model) -> SweepConfig:
    return replace(base, model=replace(base.model, **model))


PRESETS: dict[str, tuple[str, SweepConfig]] = {
    "iris-tanh": ("Fig. 8, Iris 4-10-3, tanh", _with_model(_IRIS, activation="tanh")),
    "iris-sigmoid": ("Fig. 8, Iris 4-10-3, sigmoid", _with_model(_IRIS, activation="sigmoid")),
    "iris-relu": ("Fig. 8, Iris 4-10-3, relu", _with_model(_IRIS, activation="relu")),
    "mnist-tanh": ("Figs. 1-5, MNIST 784-64-10, tanh", _with_model(_MNIST, activation="tanh")),
    "mnist-sigmoid": ("Fig. 9, MNIST 784-64-10, sigmoid", _with_model(_MNIST, activation="sigmoid")),
    "mnist-relu": ("Fig. 9, MNIST 784-64-10, relu", _with_model(_MNIST, activation="relu")),
    "mnist-deep": ("Fig. 10, MNIST 784-32-32-10, tanh", _with_model(_MNIST, hidden=(32, 32))),
    "mnist-l2": ("Fig. 11, MNIST 784-64-10, tanh, L2 1e-3 (the figure also shows 1e-5: --l2 1e-5)",
                 _with_model(_MNIST, l2=1e-3)),
    "mnist-cnn": ("Fig. 12, MNIST CNN conv8-pool-conv16-pool-linear (9,098 params), relu, N(0, 0.01^2)", _CNN),
    "cifar10-tanh": ("Fig. 13, CIFAR-10 3072-256-10, tanh", _with_model(_CIFAR, activation="tanh")),
    "cifar10-sigmoid": ("Fig. 13, CIFAR-10 3072-256-10, sigmoid", _with_model(_CIFAR, activation="sigmoid")),
    "cifar10-relu": ("Fig. 13, CIFAR-10 3072-256-10, relu", _with_model(_CIFAR, activation="relu")),
}


def names() -> list[str]:
    """Preset names in the order of the paper's figures."""
    return list(PRESETS)


def get(name: str) -> SweepConfig:
    """The config of preset ``name``, with its output file named after it."""
    check_choice("preset", name, PRESETS)
    return replace(PRESETS[name][1], output=f"{name}.h5")


def describe(name: str) -> str:
    """The figure and network a preset reproduces."""
    return PRESETS[name][0]
