"""The local stack and its tools (`clippings up|replay|tail|dlq`), not used in the pods."""
