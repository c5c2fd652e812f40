"""Where the site leans on its frameworks' internals: the channel layer, the shared-frame wire,
the database hop, the socket base, the server's write patch and every Redis connection.
Each use, its reason, its measurement and the versions checked: README.md here.
"""
