"""quota_svc: plans, subscriptions and exact monthly request counting (PostgreSQL)."""
