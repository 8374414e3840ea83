"""The trainer: two-stage CLIPPINGS training of the bi-encoder (never imported by the library)."""
