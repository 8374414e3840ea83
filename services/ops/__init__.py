"""What operators see: health and readiness, Prometheus metrics, key=value logs."""
