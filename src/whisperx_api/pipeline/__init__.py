"""Audio in, Transcript out: stages, their order, backends and the model cache."""
