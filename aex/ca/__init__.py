"""Drivers of the certificate authority: CA key storage, certificate records, the authority.

The signing, verification and lifecycle rules live in the pure core (aex/core/certs.py and
aex/core/x509_export.py); this package owns the files, the clock and the randomness.
"""
