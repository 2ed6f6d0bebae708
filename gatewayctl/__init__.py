"""gatewayctl: the admin and ops command line of the LLM gateway (``python -m gatewayctl``)."""
