"""Metrics for honest evaluation."""
