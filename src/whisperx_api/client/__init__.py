"""A command-line client for a running server's job endpoints (`whisperx-api jobs ...`).

It speaks HTTP only: nothing here imports the server, the pipeline or a model.
"""
