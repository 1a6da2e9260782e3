"""Blob storage for uploaded audio: local disk (embedded mode)."""
