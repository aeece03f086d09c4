"""chronorec: time-aware user behavior modeling for recommender systems."""

__version__ = "0.1.0"
