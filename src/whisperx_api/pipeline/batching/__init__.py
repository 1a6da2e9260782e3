"""Batching across requests: chunks of every running job share the model's forward passes."""
