"""The site's pages and HTTP API: views, URLs, error pages and the middleware in front of them."""
