"""Forwarding an authorized request upstream: HTTP, WebSocket tunnels, the headers that go along."""
