"""Capacity planning for self-hosted model serving: performance model, queueing screen, simulator, search."""
