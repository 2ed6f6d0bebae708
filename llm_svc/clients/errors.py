"""Kept for the clients that import it from here; the translation lives in
:mod:`gateway_common.client_errors`."""

from gateway_common.client_errors import details, translate

__all__ = ["details", "translate"]
