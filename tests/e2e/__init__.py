"""End-to-end tests against real external programs (see README.md here)."""
