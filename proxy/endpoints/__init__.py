"""idgate's own endpoints: health, readiness, keys, userinfo, sign-in and sign-out, forward-auth.

Each handler takes `(request, ctx)`; proxy/server/dispatch.py maps the exact normalised paths
(own_paths.py) to them.
"""
