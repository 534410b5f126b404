"""Alerts: rules (budgets, anomalies, drift, deployment regressions), their life cycle and delivery."""
