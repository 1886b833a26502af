"""Deployment files (image, compose, Kubernetes, alert rules) validate and match the code."""
