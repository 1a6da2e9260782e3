"""One module per backend; the only place heavy inference libraries are imported."""
