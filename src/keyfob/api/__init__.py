"""The JSON API (/api/v1/): SSH code verification for Keyfob's PAM module, login links."""
