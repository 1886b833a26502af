"""Hosting: the aiohttp app, dispatch to endpoints or the proxy, serving, workers, reload."""
