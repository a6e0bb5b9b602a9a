"""Training loops: SFT, rollouts (sampling), the RL trainer loop, checkpoints."""
