"""speechrl: reproducible RL post-training of speech-aware language models."""

__version__ = "0.1.0"
