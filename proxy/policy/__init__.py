"""Authorization: pure route matching and policy evaluation, no I/O, no aiohttp."""
