"""What every page's scripts read from the page: the protocol's close codes."""

from __future__ import annotations

import json
from typing import Any

from django.http import HttpRequest

from chat.protocol import close_codes

_CLOSE_CODES = json.dumps(close_codes())


def protocol(request: HttpRequest) -> dict[str, Any]:
    """`close_codes`: chat.protocol.CloseCode by name, as JSON for <body data-close-codes>."""
    return {"close_codes": _CLOSE_CODES}
