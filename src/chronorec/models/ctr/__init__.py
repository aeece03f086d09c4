"""CTR (user response prediction) models; importing this package registers them all."""

from chronorec.models.ctr import tin  # noqa: F401
