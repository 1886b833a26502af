"""Hosting: the aiohttp app, connection limits, dispatch to endpoints or the proxy, serving,
workers, reload."""
