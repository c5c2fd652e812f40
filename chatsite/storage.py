"""Static files: whitenoise's compressed files with hashed names, ES modules included.

The room page is native ES modules (static/chat/*.js) that import each other
by relative path. Django's manifest storage rewrites those imports to the
hashed names only when asked to; without it, a module would import the
unhashed file, which may be cached from an older release.
"""

from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticStorage(CompressedManifestStaticFilesStorage):
    support_js_module_import_aggregation = True
