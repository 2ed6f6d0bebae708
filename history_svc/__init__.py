"""history_svc: every interaction stored, listed, searched and summarised (MongoDB)."""
