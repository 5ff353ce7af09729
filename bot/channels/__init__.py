"""Rasa input channels of the hotline assistant (one channel per file)."""
