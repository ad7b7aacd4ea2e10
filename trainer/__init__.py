"""The trainer: builds Med-GRIT-style data, fine-tunes and evaluates Qwen-VL-family models."""
