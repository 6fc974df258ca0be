"""The second factor: enrolment, verification (single use, throttled), secrets at rest."""
