"""The embedder service: clippings.raw -> clippings.embedded."""
