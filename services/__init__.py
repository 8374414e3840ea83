"""The streaming services: embedder and linker on Kafka, with Redis, FAISS and Prometheus (docs/services.md)."""
