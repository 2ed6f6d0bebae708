"""identity_svc: tenants, users, API keys, models and model configurations (PostgreSQL)."""
