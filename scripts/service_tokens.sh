#!/usr/bin/env bash
# Fresh per-service credentials: each service's own GATEWAY_SERVICE_TOKEN and the SHA-256 its
# callees list in GATEWAY_ACCEPTED_SERVICE_TOKENS. Prints KEY=value lines for docker compose
# (`scripts/service_tokens.sh >> .env`); see docs/operations.md for Kubernetes.
set -euo pipefail
for svc in IDENTITY QUOTA HISTORY LLM; do
  token=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
  echo "${svc}_SERVICE_TOKEN=${token}"
  echo "${svc}_SERVICE_TOKEN_SHA256=$(printf '%s' "$token" | sha256sum | cut -d' ' -f1)"
done
