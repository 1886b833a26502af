"""Certificate files re-read when they change on disk, without a restart.

`watch.WatchedContext` is one ssl.SSLContext built from files; `watch.CertificateWatcher` polls
them. `listener.rotating_server_context` gives the listener a context whose handshakes use the
newest one.
"""
