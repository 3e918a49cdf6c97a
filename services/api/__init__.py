"""The public API and the dashboard it serves: listings, search and filters with signed cursors."""
