"""The endpoints' handlers, one module per resource; services/api/routes.py says which path runs which."""
