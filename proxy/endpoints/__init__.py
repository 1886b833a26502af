"""idgate's own endpoints: health, readiness, keys, identity (and sign-in, forward-auth later)."""
