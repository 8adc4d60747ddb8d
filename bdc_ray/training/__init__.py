"""The training kit: what every training loop of the project is built from.

Tiny-model builds (bdc_ray/tiny), LoRA experts (disentangle), the hypernetwork (customize) and
the demo solver all encode (prompt, response) pairs the same way, batch by length the same way,
follow the same warm-up + cosine schedule, and measure the same masked next-token loss, so a
number printed by one stage means what the same number means in another. They also choose their
device and weight dtype the same way (device.py): the GPU the process holds, else the CPU.
"""

from bdc_ray.training.batches import collate, epoch_batches
from bdc_ray.training.device import (
    Precision,
    choose_device,
    choose_dtype,
    train_device,
    train_worker_device,
    weight_dtype,
    worker_device,
)
from bdc_ray.training.examples import IGNORE, Example, encode_pairs, model_context
from bdc_ray.training.loss import masked_loss, validation_loss
from bdc_ray.training.schedule import Schedule, learning_rate

__all__ = [
    "IGNORE",
    "Example",
    "Precision",
    "Schedule",
    "choose_device",
    "choose_dtype",
    "collate",
    "encode_pairs",
    "epoch_batches",
    "learning_rate",
    "masked_loss",
    "model_context",
    "train_device",
    "train_worker_device",
    "validation_loss",
    "weight_dtype",
    "worker_device",
]
