"""Audio I/O (validated loading), log-mel features and noise mixing."""

from speechrl.audio.io import AudioError, load_audio

__all__ = ["AudioError", "load_audio"]
