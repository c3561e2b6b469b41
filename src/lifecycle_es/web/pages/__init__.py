"""The console's page groups, one module each; each has ``routes()``."""
