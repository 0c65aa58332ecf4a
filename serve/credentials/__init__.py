"""aex-credentials-provider: AP2 payment mandates and their receipts."""
