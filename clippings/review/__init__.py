"""The review web application: reviewers confirm, reject or merge the linker's decisions.

Link and raw events are read into PostgreSQL by a background consumer (ingest.py); every
action is stored (corrections table) and then published to clippings.corrections, which the
linker applies. docs/review.md has the whole picture.
"""
