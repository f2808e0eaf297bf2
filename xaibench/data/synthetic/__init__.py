"""Synthetic datasets with ground-truth explanation masks, generated deterministically from ``data_seed``."""
