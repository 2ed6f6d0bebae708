"""gRPC adapters of llm_svc's dependencies: one per service, one long-lived channel each."""
