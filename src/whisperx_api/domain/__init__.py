"""Pure data shared by every layer: frozen dataclasses, no I/O."""
