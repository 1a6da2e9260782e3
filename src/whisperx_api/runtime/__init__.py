"""Composition roots: the Runtime bundle and the embedded wiring (`MODE=distributed` is wired in
the `distributed` package)."""
