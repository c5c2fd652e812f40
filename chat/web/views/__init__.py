"""The site's views: pages, the JSON API, files and health, one module each."""
