"""The request's stages, outermost first: observe, accept, (dispatch), authorize, identify.

Each stage reads and writes the one RequestContext (context.py) that accept creates; responses.py
is the one place where an error becomes an HTTP answer.
"""
