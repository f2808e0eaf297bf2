"""Relevance propagation methods: layer-wise rules applied backwards through the network."""
