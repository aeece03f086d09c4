"""Long-tail users (PIN, reconstructed from its abstract; see ``docs/pin.md``).

- :mod:`.aggregation` — backbone training with backdoor-adjusted gradient aggregation
  ``g = sum_z P(z) grad L_z`` and the comparison strategies (joint, inverse-frequency re-weighting,
  head-only / tail-only training), as a wrapper around any :class:`~chronorec.train.task.Task`.
- :mod:`.plugins` — per-group plugin prediction networks routed by activity group, around any model.
"""

from chronorec.longtail.aggregation import GroupAggregatedTask, LongtailConfig, group_weights
from chronorec.longtail.plugins import PluginModel

__all__ = ["GroupAggregatedTask", "LongtailConfig", "PluginModel", "group_weights"]
