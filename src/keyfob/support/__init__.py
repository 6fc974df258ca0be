"""The support desk: turning 2FA off for a customer who lost it, only after an identity check."""
