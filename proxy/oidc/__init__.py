"""The OpenID provider: its metadata and signing keys, fetched without blocking the loop."""
