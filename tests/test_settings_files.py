"""chatsite.settings for files (docs/files.md), loaded in a fresh interpreter with a
controlled environment: disk or S3-compatible storage, how files are served, and the
bounds on image decodes.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.settings_helpers import BASE_DIR, SECRET, refused, run

# Each test loads the settings in a fresh interpreter: the slow part of the
# unit tier, left out of `make test-fast`.
pytestmark = pytest.mark.processes


# --- files and their storage (docs/files.md) ---------------------------------------------------

FILES_DUMP = """
import json
import chatsite.settings as s
from chat.web.middleware import content_security_policy
print(json.dumps({
    "STORAGE": s.STORAGES["default"],
    "MEDIA_ROOT": str(s.MEDIA_ROOT),
    "CHAT_UPLOAD_MAX_BYTES": s.CHAT_UPLOAD_MAX_BYTES,
    "CHAT_UPLOAD_KEEP_SECONDS": s.CHAT_UPLOAD_KEEP_SECONDS,
    "CHAT_FILES_ACCEL_REDIRECT": s.CHAT_FILES_ACCEL_REDIRECT,
    "FILE_UPLOAD_MAX_MEMORY_SIZE": s.FILE_UPLOAD_MAX_MEMORY_SIZE,
    "CHAT_IMAGE_MAX_PIXELS": s.CHAT_IMAGE_MAX_PIXELS,
    "CHAT_IMAGE_DECODES": s.CHAT_IMAGE_DECODES,
    "CHAT_UPLOAD_QUOTA_BYTES": s.CHAT_UPLOAD_QUOTA_BYTES,
    "CSP": content_security_policy(),
}))
"""


def load_files(**variables: str) -> dict[str, Any]:
    result = run(
        ["-c", "import django; django.setup()\n" + FILES_DUMP],
        DJANGO_SETTINGS_MODULE="chatsite.settings",
        DJANGO_SECRET_KEY=SECRET,
        **variables,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_files_are_kept_on_disk_by_default_and_served_by_the_workers():
    values = load_files()
    assert values["STORAGE"] == {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    assert values["MEDIA_ROOT"] == str(BASE_DIR / "var" / "media")
    assert values["CHAT_UPLOAD_MAX_BYTES"] == 10 * 1024 * 1024
    assert values["CHAT_UPLOAD_KEEP_SECONDS"] == 86400
    assert values["CHAT_UPLOAD_QUOTA_BYTES"] == 1024**3
    assert values["CHAT_FILES_ACCEL_REDIRECT"] == ""
    assert "img-src 'self' data:;" in values["CSP"]
    small = load_files(
        CHAT_UPLOAD_MAX_BYTES="1000",
        DJANGO_MEDIA_ROOT="/srv/chat-files",
        CHAT_UPLOAD_QUOTA_BYTES="5000",
    )
    assert small["CHAT_UPLOAD_QUOTA_BYTES"] == 5000
    assert (small["CHAT_UPLOAD_MAX_BYTES"], small["FILE_UPLOAD_MAX_MEMORY_SIZE"]) == (1000, 1000)
    assert small["MEDIA_ROOT"] == "/srv/chat-files"
    behind_nginx = load_files(CHAT_FILES_ACCEL_REDIRECT="/protected-media/")
    assert behind_nginx["CHAT_FILES_ACCEL_REDIRECT"] == "/protected-media/"


def test_image_decodes_are_bounded_by_default_and_by_the_environment():
    # The defaults are the ones tests/integration/test_image_memory_live.py measures.
    values = load_files()
    assert (values["CHAT_IMAGE_MAX_PIXELS"], values["CHAT_IMAGE_DECODES"]) == (24_000_000, 2)
    values = load_files(CHAT_IMAGE_MAX_PIXELS="12000000", CHAT_IMAGE_DECODES="1")
    assert (values["CHAT_IMAGE_MAX_PIXELS"], values["CHAT_IMAGE_DECODES"]) == (12_000_000, 1)


def test_s3_compatible_storage_is_chosen_by_settings_alone():
    values = load_files(
        CHAT_S3_BUCKET="chat-files",
        CHAT_S3_ENDPOINT_URL="https://minio.example.com:9000",
        CHAT_S3_REGION="eu-west-1",
        CHAT_S3_ACCESS_KEY_ID="key",
        CHAT_S3_SECRET_ACCESS_KEY="secret",
        CHAT_S3_ADDRESSING_STYLE="path",
        CHAT_S3_URL_SECONDS="30",
    )
    assert values["STORAGE"] == {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": "chat-files",
            "default_acl": None,
            "querystring_auth": True,
            "querystring_expire": 30,
            "signature_version": "s3v4",
            "file_overwrite": False,
            "endpoint_url": "https://minio.example.com:9000",
            "region_name": "eu-west-1",
            "access_key": "key",
            "secret_key": "secret",
            "addressing_style": "path",
        },
    }
    # Images redirected to the store may load in the pages.
    assert (
        "img-src 'self' data: https://minio.example.com:9000 https://*.minio.example.com:9000;"
        in values["CSP"]
    )
    # Without credentials or an endpoint: boto3's own chain, AWS itself.
    aws = load_files(CHAT_S3_BUCKET="chat-files")
    assert set(aws["STORAGE"]["OPTIONS"]) == {
        "bucket_name",
        "default_acl",
        "querystring_auth",
        "querystring_expire",
        "signature_version",
        "file_overwrite",
    }
    assert "https://*.amazonaws.com" in aws["CSP"]


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("CHAT_FILES_ACCEL_REDIRECT", "protected-media"),
        ("CHAT_FILES_ACCEL_REDIRECT", "/protected media/"),
        ("CHAT_UPLOAD_MAX_BYTES", "10MB"),
        ("CHAT_UPLOAD_MAX_BYTES", "0"),
        ("CHAT_UPLOAD_KEEP_SECONDS", "5"),
        ("CHAT_UPLOAD_RATE_LIMIT", "30"),
        ("CHAT_IMAGE_MAX_PIXELS", "24MP"),
        ("CHAT_IMAGE_MAX_PIXELS", "0"),
        ("CHAT_IMAGE_DECODES", "0"),
        ("CHAT_UPLOAD_QUOTA_BYTES", "1GiB"),
        ("CHAT_UPLOAD_QUOTA_BYTES", "-1"),
    ],
)
def test_bad_file_settings_fail_loudly(name, raw):
    assert name in refused(DJANGO_SECRET_KEY=SECRET, **{name: raw})


def test_a_bad_s3_addressing_style_fails_loudly():
    stderr = refused(
        DJANGO_SECRET_KEY=SECRET, CHAT_S3_BUCKET="b", CHAT_S3_ADDRESSING_STYLE="sideways"
    )
    assert "CHAT_S3_ADDRESSING_STYLE" in stderr
