"""Shift sets: labelled evaluation data made by a pipeline that shares nothing with the
training generator (clippings/data/synth/): a real name lexicon, other typefaces, its own
renderer and damage, and a real OCR engine for the text (tesseract; for news also PP-OCR,
`--ocr ppocr`). See docs/data.md, "Shift sets", and `clippings shift --help`.
"""
