"""Where events and read models live: store URLs, the fast event codec, database access."""
