"""The security activity log: every security-relevant change, in the same transaction."""
