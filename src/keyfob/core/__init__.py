"""What every Keyfob app shares: the clock, the key ring, the throttle, consume-once and
e-mailed one-time codes. Imports only Django, :mod:`keyfob.otp` and the standard library."""
