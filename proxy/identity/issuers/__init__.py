"""Token issuers: which issuer a token names, and how each kind turns claims into a Principal."""
