"""Composition: the only place that picks implementations (embedded or distributed)."""
