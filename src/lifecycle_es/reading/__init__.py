"""The read side: read models and their machinery, audit, metrics, gaps and health."""
