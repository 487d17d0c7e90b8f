"""The backup tool's own checks, where the servers cannot exercise them.

moto neither returns a multipart object's composite checksum nor checks per-part
checksums, so the comparison the tool makes after CompleteMultipartUpload is driven here
by a stand-in client that answers as S3 documents it. The rest are the pure helpers whose
edge cases are cheaper to pin down directly than through a subprocess.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any, cast

import pytest

from leanstack.host.agent.aws import region_of_arn
from leanstack.host.agent.backup_settings import parse_database_url
from leanstack.host.agent.common import Failure
from leanstack.host.agent.dumps import MultipartUpload
from leanstack.host.agent.postgres import compare_row_counts, parse_row_counts


class _ServiceModel:
    def operation_model(self, name: str) -> Any:
        class _Shape:
            members = {"IfNoneMatch": object()}

        class _Operation:
            input_shape = _Shape()

        return _Operation()


class _Meta:
    service_model = _ServiceModel()


class CompletingS3:
    """Answers UploadPart, CompleteMultipartUpload and HeadObject like S3 does."""

    meta = _Meta()

    def __init__(self, composite: str | None, stored_size: int | None = None) -> None:
        self.composite = composite
        self.stored_size = stored_size
        self.sizes: list[int] = []
        self.completed_with: dict[str, Any] = {}

    def create_multipart_upload(self, **_: Any) -> dict[str, str]:
        return {"UploadId": "upload-1"}

    def upload_part(self, **request: Any) -> dict[str, str]:
        body: bytes = request["Body"]
        assert request["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(body).digest()).decode()
        self.sizes.append(len(body))
        return {"ETag": f'"etag-{request["PartNumber"]}"'}

    def complete_multipart_upload(self, **request: Any) -> dict[str, str]:
        self.completed_with = request
        return {} if self.composite is None else {"ChecksumSHA256": self.composite}

    def head_object(self, **_: Any) -> dict[str, int]:
        return {"ContentLength": self.stored_size if self.stored_size is not None else sum(self.sizes)}

    def abort_multipart_upload(self, **_: Any) -> None:
        raise AssertionError("not expected")


PARTS = [b"a" * 100, b"b" * 50]


def composite_of(parts: list[bytes]) -> str:
    digests = b"".join(hashlib.sha256(part).digest() for part in parts)
    return base64.b64encode(hashlib.sha256(digests).digest()).decode() + f"-{len(parts)}"


def upload(client: CompletingS3) -> None:
    uploader = MultipartUpload(cast(Any, client), "bucket", "key")
    for part in PARTS:
        uploader.add_part(part)
    uploader.complete(sum(len(part) for part in PARTS))


def test_matching_composite_checksum_completes() -> None:
    # If-None-Match travels as a header added by the real client's events (create_only_if_absent),
    # tested against moto in test_backup.py; this fake client sees only the parameters.
    client = CompletingS3(composite_of(PARTS))
    upload(client)
    assert [part["PartNumber"] for part in client.completed_with["MultipartUpload"]["Parts"]] == [1, 2]


def test_composite_checksum_mismatch_fails() -> None:
    with pytest.raises(Failure, match="checksum mismatch after upload"):
        upload(CompletingS3(composite_of([b"a" * 100, b"c" * 50])))


def test_size_mismatch_fails() -> None:
    with pytest.raises(Failure, match="size mismatch after upload"):
        upload(CompletingS3(None, stored_size=149))


def test_database_url_password_is_kept_out_of_the_url() -> None:
    connection = parse_database_url(
        "DATABASE_URL", "postgresql://app:p%40ss%3Aword@db.example:6432/app%20db?sslmode=verify-full"
    )
    assert connection.url == "postgresql://app@db.example:6432/app%20db?sslmode=verify-full"
    assert connection.password == "p@ss:word"
    assert connection.database == "app db"
    assert connection.child_env()["PGPASSWORD"] == "p@ss:word"
    scratch = connection.with_database("leanstack_drill_1")
    assert scratch.url == "postgresql://app@db.example:6432/leanstack_drill_1?sslmode=verify-full"
    assert parse_database_url("X", "postgresql://app@[::1]/d").url == "postgresql://app@[::1]/d"


def test_region_comes_from_the_secret_arn() -> None:
    assert region_of_arn("arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-x") == "eu-west-1"
    assert region_of_arn("rds!db-x") is None


def test_row_count_differences_are_named() -> None:
    manifest = {"row_counts": {"public.a": 3, "public.b": 1}, "large_objects": 2}
    assert compare_row_counts(manifest, {"tables": {"public.a": 3, "public.b": 1}, "large_objects": 2}) == 4
    with pytest.raises(Failure, match=r"public\.b: 1 in the backup, missing restored; large objects: 2"):
        compare_row_counts(manifest, {"tables": {"public.a": 3}, "large_objects": 0})


def test_row_count_output_is_parsed() -> None:
    lines = ["7", '{"public.a" : 3}', '{"public.\\"Odd\\nName\\"" : 0}']
    assert parse_row_counts(lines) == {
        "tables": {"public.a": 3, 'public."Odd\nName"': 0},
        "large_objects": 7,
    }
    with pytest.raises(Failure):
        parse_row_counts(["not a number"])
