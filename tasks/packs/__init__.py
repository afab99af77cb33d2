"""Data shipped with task packs."""
