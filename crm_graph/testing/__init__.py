"""Helpers for testing crm-graph and its plugins against real databases."""
