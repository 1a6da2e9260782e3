"""Live transcription sessions: OpenAI's Realtime protocol for transcription, over any
message channel (the API serves it on a WebSocket). Turns are cut by a streaming Silero VAD and
transcribed by the same transcription backend, with the same models, as file jobs."""
