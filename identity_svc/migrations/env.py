"""Alembic environment of identity_svc: the shared one (gateway_common.migrations)."""

from gateway_common.migrations import run_env

run_env()
