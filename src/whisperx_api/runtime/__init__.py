"""Composition roots: the Runtime bundle and the embedded wiring (MODE=kafka: `distributed`)."""
