"""Customer and staff accounts: the user model, sign-in's password step, the profile."""
