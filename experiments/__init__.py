"""Experiments run with the trainer (not part of the app): data generators and their notes."""
