"""Alias of :mod:`gdchaos.engine.train`, under the import path of gdchaos 0.1."""
from gdchaos.engine.train import (EpochRecord, TargetRun, gradient_step, next_call_epochs, train, train_balls,
                                  train_to_target)

__all__ = ["EpochRecord", "TargetRun", "gradient_step", "next_call_epochs", "train", "train_balls",
           "train_to_target"]
