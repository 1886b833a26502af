"""Configurations for other programs, generated from idgate\x27s own settings."""
