"""QR images in a private S3 bucket, their cache entries in DynamoDB.

Table items (partition key `pk`):

    pk          "qr#<id>"
    url, format, size, border, error_correction, fg, bg   what the image shows
    key         S3 key of the image ("qr/<id>.<png|svg>")
    created_at  epoch seconds of this creation
    creation    random id of this creation (the event handler's dedupe key)
    ttl         epoch seconds after which the entry is dead (DynamoDB TTL attribute)

DynamoDB deletes expired items lazily (up to days late), so every read checks
`ttl` itself: an item whose ttl has passed is a miss even while still in the
table.  Reads are strongly consistent: a request right after another's
creation must see it, or it would render and race for nothing.
"""
from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from chalicelib.qr.spec import QrSpec

_EXTENSIONS = {"png": "png", "svg": "svg"}


@dataclass(frozen=True)
class Entry:
    id: str
    url: str
    format: str
    key: str
    content_type: str
    created_at: int
    ttl: int
    creation: str


def object_key(spec: QrSpec) -> str:
    return f"qr/{spec.id}.{_EXTENSIONS[spec.format]}"


def _entry(item: dict) -> Entry:
    fmt = item["format"]["S"]
    return Entry(id=item["pk"]["S"].removeprefix("qr#"), url=item["url"]["S"], format=fmt,
                 key=item["key"]["S"],
                 content_type="image/png" if fmt == "png" else "image/svg+xml",
                 created_at=int(item["created_at"]["N"]), ttl=int(item["ttl"]["N"]),
                 creation=item.get("creation", {}).get("S", ""))


# The item's fields as an Entry, also for an image from the table's DynamoDB stream (the
# same attribute-value shape): chalicelib.qr.events.
entry_from_item = _entry


class QrStore:
    """S3 objects + DynamoDB items of QR codes; handed its clients."""

    def __init__(self, s3, dynamodb, bucket: str, table: str,
                 clock: Callable[[], float] = time.time):
        self.s3, self.dynamodb = s3, dynamodb
        self.bucket, self.table = bucket, table
        self.clock = clock

    def get(self, qr_id: str, now: float | None = None) -> Entry | None:
        """The live entry of qr_id (one GetItem), or None when absent or expired."""
        now = self.clock() if now is None else now
        item = self.dynamodb.get_item(TableName=self.table, Key={"pk": {"S": f"qr#{qr_id}"}},
                                      ConsistentRead=True).get("Item")
        if item is None or int(item["ttl"]["N"]) <= now:
            return None
        return _entry(item)

    def put_image(self, spec: QrSpec, body: bytes) -> str:
        """Write the image (the bucket's default SSE-KMS encrypts it); returns its key.

        The key derives from the id, so concurrent identical creations write the
        same object, not copies.
        """
        key = object_key(spec)
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body,
                           ContentType=spec.content_type,
                           CacheControl="private, max-age=3600")
        return key

    def claim(self, spec: QrSpec, key: str, now: float, ttl_seconds: int) -> Entry | None:
        """Write the entry unless a live one exists: (entry) if this call created it, else None.

        The conditional put makes one winner among concurrent identical requests;
        an expired entry may be replaced.
        """
        created_at = int(now)
        item = {
            "pk": {"S": f"qr#{spec.id}"}, "url": {"S": spec.url}, "format": {"S": spec.format},
            "size": {"N": str(spec.size)}, "border": {"N": str(spec.border)},
            "error_correction": {"S": spec.error_correction}, "fg": {"S": spec.fg},
            "bg": {"S": spec.bg}, "key": {"S": key}, "created_at": {"N": str(created_at)},
            "creation": {"S": uuid.uuid4().hex}, "ttl": {"N": str(created_at + ttl_seconds)},
        }
        try:
            self.dynamodb.put_item(
                TableName=self.table, Item=item,
                ConditionExpression="attribute_not_exists(pk) OR #ttl <= :now",
                ExpressionAttributeNames={"#ttl": "ttl"},
                ExpressionAttributeValues={":now": {"N": str(created_at)}})
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            return None
        return _entry(item)

    def presign(self, entry: Entry, now: float, max_seconds: int) -> tuple[str, int]:
        """A SigV4 presigned GET of the image, valid until the entry expires (at most
        max_seconds): (url, expires_in)."""
        expires_in = max(1, min(max_seconds, entry.ttl - int(now)))
        url = self.s3.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": entry.key},
            ExpiresIn=expires_in)
        return url, expires_in

    def image(self, entry: Entry, now: float) -> bytes | None:
        """The lookup's view of the image (`CachedEntries.image` keeps hot ones)."""
        return self.read_image(entry)

    def read_image(self, entry: Entry) -> bytes | None:
        """The image bytes, or None when the object is gone (lifecycle expiry)."""
        try:
            return self.s3.get_object(Bucket=self.bucket, Key=entry.key)["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            return None
