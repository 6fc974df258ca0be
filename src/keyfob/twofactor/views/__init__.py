"""Pages of the twofactor app, by family: ``security`` (the overview, recovery codes,
trusted browsers, turning 2FA off), ``apps`` (authenticator apps), ``keys`` (security keys and
passkeys), ``signin`` (the sign-in steps and "Confirm it is you"); ``steps`` holds what the
pages that ask for a second factor share."""
