"""SSH two-factor authentication, standalone mode: the ``keyfob-ssh`` tool and the files
the standard ``pam_google_authenticator`` module reads.

Imports only ``keyfob.otp``, ``keyfob.qr`` (segno) and the standard library: SSH servers
have no Django.
"""
