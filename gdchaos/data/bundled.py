"""Datasets that ship with scikit-learn (iris, digits), split with a fixed stratified seed."""
from __future__ import annotations

import numpy as np

from gdchaos.data.registry import DatasetSpec


def load_bundled(spec: DatasetSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``spec``'s scikit-learn dataset, split by ``train_test_split(stratify=y, random_state=seed)``."""
    from sklearn import datasets
    from sklearn.model_selection import train_test_split

    x, y = getattr(datasets, spec.loader)(return_X_y=True)
    x = np.asarray(x, dtype=np.float64)
    if spec.scale is not None:
        x = x / spec.scale
    x_train, x_test, y_train, y_test = train_test_split(
        x, np.asarray(y, dtype=np.int64), test_size=spec.test, stratify=y,
        random_state=spec.split_seed)
    return tuple(np.ascontiguousarray(a) for a in (x_train, y_train, x_test, y_test))
