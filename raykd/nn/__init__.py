"""Small PyTorch building blocks shared by the task models (no MWP knowledge, no Ray)."""

from raykd.nn.attention import MultiHeadAttention

__all__ = ["MultiHeadAttention"]
