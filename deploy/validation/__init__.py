"""The offline checks of deploy/ (run by deploy/validate.py and tests/test_deploy.py), by group:
common (rendering, lookups), k8s (schemas, references), policy (settings, hardening),
tools (checkov, hadolint), observability (alert rules, dashboard, metric names)."""
