"""Transferability estimation: metrics, their combinations across sources, and evaluation."""
