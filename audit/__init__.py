"""Audit: the platform's own audit events and, later, audit-event search."""
