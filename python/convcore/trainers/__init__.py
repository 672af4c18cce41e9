"""The training loop of models: ``Trainer`` (compile / fit / evaluate / predict), the
epoch iterator over batches, and the compiled loss and metrics."""
from .trainer import Trainer

__all__ = ["Trainer"]
