"""The linker service: clippings.embedded -> clippings.links, with its state."""
