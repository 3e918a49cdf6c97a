"""A faithful local stand-in for the YouTube Data API v3 (search.list and videos.list)."""
