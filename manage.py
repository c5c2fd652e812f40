#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys
from pathlib import Path

# The secret `make run` made for this checkout (deploy/run.sh), so that
# commands beside the running site (createsuperuser, shell) need nothing set.
LOCAL_SECRET_KEY = Path(__file__).resolve().parent / "var" / "secret_key"


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    if not os.environ.get("DJANGO_SECRET_KEY") and LOCAL_SECRET_KEY.is_file():
        os.environ["DJANGO_SECRET_KEY"] = LOCAL_SECRET_KEY.read_text().strip()
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
