"""Browser sessions: what a signed-in browser carries, sealed, and where it is kept."""
