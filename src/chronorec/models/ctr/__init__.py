"""CTR (user response prediction) models; importing this package registers them all."""

from chronorec.models.ctr import bst, dien, din, dsin, gru4rec, pooling, self_attention, tin  # noqa: F401
