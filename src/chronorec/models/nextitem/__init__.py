"""Next-item models: SASRec, LightSANs, GRU4Rec, BERT4Rec, each with INTERPOS rhythm options.

Importing this package registers them (``sasrec``, ``lightsans``, ``gru4rec``, ``bert4rec``).
"""

from chronorec.models.nextitem.bert4rec import BERT4Rec, BERT4RecConfig
from chronorec.models.nextitem.common import SeqRecConfig, SequenceRecommender, TransformerConfig
from chronorec.models.nextitem.gru4rec import GRU4Rec, GRU4RecConfig
from chronorec.models.nextitem.lightsans import LightSANs, LightSANsConfig
from chronorec.models.nextitem.sasrec import SASRec, SASRecConfig

__all__ = [
    "BERT4Rec", "BERT4RecConfig", "GRU4Rec", "GRU4RecConfig", "LightSANs", "LightSANsConfig",
    "SASRec", "SASRecConfig", "SeqRecConfig", "SequenceRecommender", "TransformerConfig",
]
