"""llm_svc: the front door; orchestrates identity, quota, the provider and history."""
