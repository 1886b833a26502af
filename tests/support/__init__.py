"""Helpers shared by test directories: fake upstreams, fake issuer, settings builders."""
