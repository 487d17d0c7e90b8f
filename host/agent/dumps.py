"""The dumps in S3: create-only multipart upload, manifests, and choosing the backup to
restore (newest complete, or a named stamp), each checked before it is used."""

from __future__ import annotations

import base64
import collections
import concurrent.futures
import datetime
import hashlib
import json
import re
from dataclasses import dataclass
from typing import (
    IO,
    TYPE_CHECKING,
    AbstractSet,
    Any,
    Deque,
    Dict,
    List,
    Mapping,
    Optional,
    Sequence,
    Set,
    Tuple,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CompletedPartTypeDef

from .aws import AWS_ERRORS, describe_aws_error
from .backup_settings import Settings
from .common import Failure, iso, parse_iso, parse_stamp, utc_now

STAMP_PATTERN = re.compile(r"^\d{8}T\d{6}Z$")
MANIFEST_SUFFIX = ".manifest.json"
DUMP_SUFFIX = ".dump"
DRILLS_FOLDER = "_drills"
MANIFEST_FORMAT = 1
UPLOAD_WORKERS = 2
DOWNLOAD_CHUNK_BYTES = 1024 * 1024
MAX_PARTS = 10000


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


class MultipartUpload:
    """Streams parts to S3 with two uploads in flight; completes with If-None-Match: *.

    The bucket has Object Lock, so every part carries its SHA-256 (S3 requires an
    integrity checksum on writes to such a bucket, and checks it). The completed object's
    composite checksum is compared with the one computed here. Nothing is visible as an
    object until `complete`; `abort` removes the parts on any failure.
    """

    def __init__(self, client: S3Client, bucket: str, key: str) -> None:
        self.client = client
        self.bucket = bucket
        self.key = key
        self.upload_id: Optional[str] = None
        self.digests: List[bytes] = []
        self.completed: List[CompletedPartTypeDef] = []
        self.in_flight: Deque[Tuple[int, concurrent.futures.Future[CompletedPartTypeDef]]] = collections.deque()
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=UPLOAD_WORKERS)

    def _start(self) -> str:
        try:
            created = self.client.create_multipart_upload(
                Bucket=self.bucket,
                Key=self.key,
                ChecksumAlgorithm="SHA256",
                ContentType="application/octet-stream",
            )
        except AWS_ERRORS as error:
            raise Failure(
                f"cannot start the upload to s3://{self.bucket}/{self.key}: {describe_aws_error(error)}"
            ) from None
        return created["UploadId"]

    def _upload(self, upload_id: str, number: int, data: bytes, digest: bytes) -> CompletedPartTypeDef:
        response = self.client.upload_part(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=upload_id,
            PartNumber=number,
            Body=data,
            ChecksumAlgorithm="SHA256",
            ChecksumSHA256=b64(digest),
        )
        return {"PartNumber": number, "ETag": response["ETag"], "ChecksumSHA256": b64(digest)}

    def _collect_oldest(self) -> None:
        number, future = self.in_flight.popleft()
        try:
            self.completed.append(future.result())
        except AWS_ERRORS as error:
            raise Failure(f"upload of part {number} failed: {describe_aws_error(error)}") from None

    def add_part(self, data: bytes) -> None:
        if self.upload_id is None:
            self.upload_id = self._start()
        number = len(self.digests) + 1
        if number > MAX_PARTS:
            raise Failure(f"the dump needs more than {MAX_PARTS} parts: raise BACKUP_PART_SIZE_MIB")
        digest = hashlib.sha256(data).digest()
        self.digests.append(digest)
        # Bounded: memory stays at a few parts whatever the database's size.
        while len(self.in_flight) >= UPLOAD_WORKERS:
            self._collect_oldest()
        self.in_flight.append((number, self.pool.submit(self._upload, self.upload_id, number, data, digest)))

    def complete(self, size: int) -> None:
        while self.in_flight:
            self._collect_oldest()
        assert self.upload_id is not None
        self.completed.sort(key=lambda part: part["PartNumber"])
        try:
            # If-None-Match: * goes with it (create_only_if_absent): never a second version.
            done = self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self.upload_id,
                MultipartUpload={"Parts": self.completed},
            )
        except AWS_ERRORS as error:
            raise Failure(f"cannot complete the upload: {describe_aws_error(error)}") from None
        self.upload_id = None
        expected = f"{b64(hashlib.sha256(b''.join(self.digests)).digest())}-{len(self.digests)}"
        stored = done.get("ChecksumSHA256")
        if stored is not None and stored != expected:
            raise Failure(f"checksum mismatch after upload: S3 has {stored}, expected {expected}")
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self.key)
        except AWS_ERRORS as error:
            raise Failure(f"cannot check the uploaded dump: {describe_aws_error(error)}") from None
        if head["ContentLength"] != size:
            raise Failure(f"size mismatch after upload: S3 has {head['ContentLength']} bytes, expected {size}")

    def abort(self) -> Optional[str]:
        """Abort after in-flight parts settle; returns why it could not be aborted, if so."""
        self.pool.shutdown(wait=True, cancel_futures=True)
        if self.upload_id is None:
            return None
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)
        except AWS_ERRORS as error:
            return (
                f"the incomplete upload {self.upload_id} could not be aborted ({describe_aws_error(error)}); "
                "it is not an object and the bucket's lifecycle rule removes it"
            )
        return None


def put_json(client: S3Client, bucket: str, key: str, document: Mapping[str, Any]) -> None:
    client.put_object(
        Bucket=bucket,
        Key=key,
        Body=json.dumps(document, indent=2, sort_keys=True).encode("utf-8") + b"\n",
        ContentType="application/json",
        ChecksumAlgorithm="SHA256",
    )


def read_exactly(stream: IO[bytes], size: int) -> bytes:
    chunks: List[bytes] = []
    remaining = size
    while remaining > 0:
        chunk = stream.read(remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def list_keys(client: S3Client, bucket: str, prefix: str) -> List[str]:
    keys: List[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return keys


# ---------------------------------------------------------------------------------------
# Choosing a backup

# A backup stamped later than now plus this is not trusted (planted, or written by a host
# whose clock is wrong): it is skipped and reported, never restored.
CLOCK_SKEW_SECONDS = 300
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
ENCODING_PATTERN = re.compile(r"^[A-Za-z0-9_]+$")
MANIFEST_REQUIRED = ("stack", "sha256", "size_bytes", "row_counts", "started_at")
# A backup whose rows (all tables' rows and large objects) or size are below this share of the
# previous complete backup's is not restored unless named (--backup): an emptied database
# backed up by its nightly run, or the new, empty database of a recovery host.
FAR_BELOW_SHARE = 0.5


@dataclass(frozen=True)
class Backup:
    stamp: str
    dump_key: str
    manifest_key: str
    manifest: Dict[str, Any]

    @property
    def started_at(self) -> datetime.datetime:
        return parse_iso(str(self.manifest["started_at"]))

    @property
    def rows(self) -> int:
        return sum(int(rows) for rows in dict(self.manifest["row_counts"]).values()) + int(
            self.manifest.get("large_objects", 0)
        )

    @property
    def size_bytes(self) -> int:
        return int(self.manifest["size_bytes"])


def shown(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def check_manifest(key: str, manifest: Any, stack: str) -> Dict[str, Any]:
    """The manifest when every field the tools read has the right type and it names `stack`
    as the stack that wrote it; otherwise a Failure naming the field.
    A manifest is a file anyone with the host's role could have written."""

    def unusable(problem: str) -> Failure:
        return Failure(f"manifest {key} is unusable: {problem}")

    if not isinstance(manifest, dict):
        raise unusable("not a JSON object")
    missing = [name for name in MANIFEST_REQUIRED if name not in manifest]
    if missing:
        raise unusable(f"it lacks {', '.join(missing)}")
    if manifest["stack"] != stack:
        raise unusable(f"it was written by stack {shown(manifest['stack'])}, not {stack}")
    if not isinstance(manifest["sha256"], str) or not SHA256_PATTERN.match(manifest["sha256"]):
        raise unusable(f"sha256 is {shown(manifest['sha256'])}, not 64 hex digits")
    if not is_count(manifest["size_bytes"]) or manifest["size_bytes"] == 0:
        raise unusable(f"size_bytes is {shown(manifest['size_bytes'])}, not a positive integer")
    started = manifest["started_at"]
    try:
        moment = parse_iso(started) if isinstance(started, str) else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise unusable(f"started_at is {shown(started)}, not a UTC time such as 2026-01-31T03:30:00Z")
    counts = manifest["row_counts"]
    if not isinstance(counts, dict) or not all(is_count(rows) for rows in counts.values()):
        raise unusable(f"row_counts is {shown(counts)}, not an object of table names and row counts")
    for name in ("large_objects", "database_size_bytes"):
        if name in manifest and not is_count(manifest[name]):
            raise unusable(f"{name} is {shown(manifest[name])}, not a count")
    if "encoding" in manifest and not (
        isinstance(manifest["encoding"], str) and ENCODING_PATTERN.match(manifest["encoding"])
    ):
        raise unusable(f"encoding is {shown(manifest['encoding'])}, not an encoding name")
    if "server_version" in manifest and not isinstance(manifest["server_version"], str):
        raise unusable(f"server_version is {shown(manifest['server_version'])}, not text")
    return manifest


@dataclass(frozen=True)
class Candidate:
    stamp: str
    folder: str


def load_backup(settings: Settings, s3: S3Client, stack: str, keys: AbstractSet[str], candidate: Candidate) -> Backup:
    folder, backup_stamp = candidate.folder, candidate.stamp
    dump_key, manifest_key = folder + backup_stamp + DUMP_SUFFIX, folder + backup_stamp + MANIFEST_SUFFIX
    if dump_key not in keys:
        raise Failure(f"manifest {manifest_key} has no dump next to it")
    try:
        manifest = json.loads(s3.get_object(Bucket=settings.bucket, Key=manifest_key)["Body"].read())
    except AWS_ERRORS as error:
        raise Failure(f"cannot read {manifest_key}: {describe_aws_error(error)}") from None
    except ValueError:
        raise Failure(f"manifest {manifest_key} is unusable: not JSON") from None
    return Backup(backup_stamp, dump_key, manifest_key, check_manifest(manifest_key, manifest, stack))


def backup_folders(settings: Settings, stack: str, database: str) -> Tuple[str, str]:
    """The stack's own folder, <prefix>/<stack>/<database>/, and the folder of the layout
    before per-stack folders, <prefix>/<database>/, read as a fallback: its manifests count
    only when they name `stack`, as every manifest since the first release does."""
    return settings.stack_key(stack, database) + "/", settings.key(database) + "/"


def list_candidates(settings: Settings, s3: S3Client, folders: Sequence[str]) -> Tuple[List[Candidate], Set[str]]:
    """Every manifest stamp in the folders, newest first (the stack's own folder first on a
    tie), and all keys found."""
    keys: Set[str] = set()
    candidates: List[Candidate] = []
    for folder in folders:
        try:
            found = list_keys(s3, settings.bucket, folder)
        except AWS_ERRORS as error:
            raise Failure(f"cannot list s3://{settings.bucket}/{folder}: {describe_aws_error(error)}") from None
        keys.update(found)
        for key in found:
            name = key[len(folder) : -len(MANIFEST_SUFFIX)]
            if key.endswith(MANIFEST_SUFFIX) and STAMP_PATTERN.match(name):
                candidates.append(Candidate(name, folder))
    order = {folder: rank for rank, folder in enumerate(folders)}
    candidates.sort(key=lambda candidate: (candidate.stamp, -order[candidate.folder]), reverse=True)
    return candidates, keys


def choose_backup(
    settings: Settings,
    s3: S3Client,
    database: str,
    skipped: List[str],
    wanted: Optional[str] = None,
    skip_unusable: bool = False,
    stack: Optional[str] = None,
) -> Backup:
    """The newest complete backup (a dump with its manifest) of `stack` (default: this host's),
    or the one stamped `wanted`.

    Backups dated in the future are skipped and listed in `skipped`: the host's role may
    write under its prefix, so a planted `29991231T000000Z` would otherwise win every time,
    and Object Lock keeps it there. A dump without a manifest is incomplete and ignored; a
    manifest written by another stack is unusable. The drill fails on an unusable newest
    manifest (it is what a restore would pick); the restore (`skip_unusable`) passes over it
    to the newest usable one and says so.
    """
    stack = stack or settings.stack
    folders = backup_folders(settings, stack, database)
    candidates, keys = list_candidates(settings, s3, folders)
    where = f"s3://{settings.bucket}/{folders[0]} (or {folders[1]})"
    if wanted is not None:
        named = [candidate for candidate in candidates if candidate.stamp == wanted]
        if not named:
            raise Failure(f"no backup {wanted} under {where} (a dump and its manifest)")
        return load_backup(settings, s3, stack, keys, named[0])
    latest_trusted = utc_now() + datetime.timedelta(seconds=CLOCK_SKEW_SECONDS)
    for candidate in candidates:
        if parse_stamp(candidate.stamp) > latest_trusted:
            skipped.append(f"skipped {candidate.folder}{candidate.stamp}: dated in the future (now {iso(utc_now())})")
            continue
        try:
            chosen = load_backup(settings, s3, stack, keys, candidate)
        except Failure as problem:
            if not skip_unusable:
                raise
            skipped.append(f"skipped {problem}")
            continue
        if chosen.started_at > latest_trusted:
            skipped.append(f"skipped {chosen.manifest_key}: its started_at is in the future")
            continue
        return chosen
    more = f" ({len(skipped)} skipped)" if skipped else ""
    raise Failure(f"no complete backup of stack {stack} under {where}{more}")


def previous_backup(settings: Settings, s3: S3Client, stack: str, database: str, chosen: Backup) -> Optional[Backup]:
    """The newest complete, usable backup of `stack` older than `chosen`, if any."""
    candidates, keys = list_candidates(settings, s3, backup_folders(settings, stack, database))
    for candidate in candidates:
        if candidate.stamp >= chosen.stamp:
            continue
        try:
            return load_backup(settings, s3, stack, keys, candidate)
        except Failure:
            continue
    return None


def check_not_far_below(chosen: Backup, previous: Optional[Backup], from_stack_hint: str) -> None:
    """Refuse a backup with no rows, or with rows or size far below the previous complete
    backup's: a nightly run after the data was lost, or a recovery host's empty database."""
    named = f"name it to restore it anyway: --backup {chosen.stamp}"
    if chosen.rows == 0:
        raise Failure(f"refusing {chosen.dump_key}: it holds no rows; {named}{from_stack_hint}")
    if previous is None:
        return
    if chosen.rows < previous.rows * FAR_BELOW_SHARE or chosen.size_bytes < previous.size_bytes * FAR_BELOW_SHARE:
        raise Failure(
            f"refusing {chosen.dump_key}: {chosen.rows} rows and {chosen.size_bytes} bytes, far below the previous "
            f"complete backup {previous.dump_key} ({previous.rows} rows, {previous.size_bytes} bytes); "
            f"restore that one with --backup {previous.stamp}, or {named}{from_stack_hint}"
        )
