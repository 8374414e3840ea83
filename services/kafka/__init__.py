"""Kafka clients, the dead-letter queue and the consumer-loop helpers."""
