"""aex-certauth: certificates over HTTP, the CA's records and CRL, challenges, delegations, status
lists."""
