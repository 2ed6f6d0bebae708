"""Shared infrastructure of the gateway's services; imports no service."""
