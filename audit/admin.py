"""Admin for audit (audit search arrives with the audit-search issue)."""
