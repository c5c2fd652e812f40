"""The site's WebSockets: the room socket, the page's own socket (/ws/me/), their order
(delivery), the worker's room feeds and its watcher.
"""
