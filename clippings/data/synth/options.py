"""The choices of `clippings synth`, apart from the generators so the CLI can name them
without importing NumPy and Pillow."""

KINDS = ("jp-firms", "news")
TASKS = ("train", "link", "dedup")
FONT_SETS = ("train", "heldout", "all")
DEGRADATION_SETS = ("train", "heldout")
OCR_ENGINES = ("simulated", "tesseract")
CAPTION_STYLES = ("short", "long")
SIBLING_PHOTOS = ("other", "same-place")
