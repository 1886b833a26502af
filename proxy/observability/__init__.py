"""What idgate tells its operators: Prometheus metrics, the decision log, the HTTP server's log."""
