"""The site's server: daphne, with an access log that never writes a token.

daphne logs the full URI of every HTTP request; `?token=` grants a socket, so
it is blanked before the line is written. Run it as daphne is run:

    python -m chatsite.server $(cat deploy/daphne.args) -p 8000 chatsite.asgi:application
"""

from __future__ import annotations

import re
from typing import Any

from daphne.cli import CommandLineInterface
from daphne.server import Server

_SECRETS = re.compile(r"(?i)([?&;](?:token|access_token)=)[^&;#\s\"]*")


def scrub(path: str) -> str:
    """`path` with the values of its token parameters replaced by `[removed]`."""
    return _SECRETS.sub(r"\1[removed]", path)


class ScrubbingServer(Server):
    def log_action(self, protocol: str, action: str, details: dict[str, Any]) -> None:
        if isinstance(details.get("path"), str):
            details = {**details, "path": scrub(details["path"])}
        super().log_action(protocol, action, details)


class ScrubbingCommandLine(CommandLineInterface):
    server_class = ScrubbingServer


def main() -> None:
    ScrubbingCommandLine.entrypoint()


if __name__ == "__main__":
    main()
