"""Synthetic training and evaluation data (`clippings synth`)."""
