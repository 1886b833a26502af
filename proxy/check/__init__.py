"""`idgate check --online`: what only the provider and the session store can tell."""
