"""The HTTP edge: app factory, auth, wire schemas, error table, routes."""
