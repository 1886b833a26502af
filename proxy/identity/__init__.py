"""Identification: credentials in a request become a Principal, or None when there are none."""
