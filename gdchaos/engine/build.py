"""The network a sweep's config describes, for its dataset."""
from __future__ import annotations

from gdchaos import data
from gdchaos.config import SweepConfig
from gdchaos.errors import GdchaosError
from gdchaos.nn import CNN, MLP, Network


def build_model(config: SweepConfig, n_features: int, n_classes: int) -> Network:
    """The MLP (``n_features`` -> hidden widths -> ``n_classes``) or CNN (on the dataset's image shape,
    from its manifest) of ``config.model``."""
    spec = config.model
    if spec.kind == "cnn":
        shape = data.dataset_spec(config.dataset).image_shape
        if shape is None:
            images = [name for name in data.names() if data.dataset_spec(name).image_shape]
            raise GdchaosError(f"model.kind: cnn needs an image dataset ({', '.join(images)}); "
                               f"got {config.dataset!r}")
        return CNN(input_shape=shape, layers=spec.layers, n_classes=n_classes, init_std=spec.init_std, l2=spec.l2,
                   dtype=config.dtype)
    return MLP((n_features, *spec.hidden, n_classes), activation=spec.activation, l2=spec.l2,
               init_std=spec.init_std, dtype=config.dtype)


def build_for_dataset(config: SweepConfig) -> Network:
    """:func:`build_model` with the feature and class counts of the dataset's manifest (no data needed)."""
    spec = data.dataset_spec(config.dataset)
    return build_model(config, spec.features, spec.classes)
