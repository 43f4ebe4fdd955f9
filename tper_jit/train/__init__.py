"""The trainer: configuration, the fused offline chunk, the outer loop and its logging."""
