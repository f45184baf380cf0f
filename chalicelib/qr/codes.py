"""Dynamic codes' items in DynamoDB (the source of truth) and their images in S3.

See chalicelib.qr.dynamic for the item's attributes.  Every change goes through a
conditional write, so a retired code stays retired and an unknown id is a 404.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from chalicelib.errors import NotFound, PulseError
from chalicelib.qr.dynamic import Code, Patch, Rule, new_code, short_url
from chalicelib.qr.spec import QrSpec


class Gone(PulseError):
    status_code = 410
    code = "Gone"


@dataclass(frozen=True)
class Record:
    """A dynamic code's item, as the team's routes answer it."""

    code: str
    target: str
    rules: tuple[Rule, ...]
    spec: QrSpec  # the image: the short URL and the rendering options
    key: str
    created_at: int
    updated_at: int
    deleted_at: int | None = None

    def redirect(self) -> Code:
        return Code(self.code, self.target, self.rules, self.deleted_at is not None)


def _pk(code: str) -> dict:
    return {"pk": {"S": f"dyn#{code}"}}


def _rules_json(rules) -> str:
    return json.dumps([r.to_dict() for r in rules], separators=(",", ":"))


def item_record(item: Mapping) -> Record:
    """A dynamic code's DynamoDB item (or stream image) as a Record."""
    spec = QrSpec(url=item["url"]["S"], format=item["format"]["S"],
                  size=int(item["size"]["N"]), border=int(item["border"]["N"]),
                  error_correction=item["error_correction"]["S"], fg=item["fg"]["S"],
                  bg=item["bg"]["S"])
    deleted = item.get("deleted_at")
    return Record(code=item["pk"]["S"].removeprefix("dyn#"), target=item["target"]["S"],
                  rules=tuple(Rule(**r) for r in json.loads(item["rules"]["S"])), spec=spec,
                  key=item["key"]["S"], created_at=int(item["created_at"]["N"]),
                  updated_at=int(item["updated_at"]["N"]),
                  deleted_at=int(deleted["N"]) if deleted else None)


class DynamicCodes:
    """Create, read, change and retire dynamic codes; handed its clients."""

    def __init__(self, s3, dynamodb, bucket: str, table: str, base_url: str,
                 clock: Callable[[], float] = time.time):
        self.s3, self.dynamodb = s3, dynamodb
        self.bucket, self.table, self.base_url = bucket, table, base_url
        self.clock = clock

    def get(self, code: str) -> Record | None:
        item = self.dynamodb.get_item(TableName=self.table, Key=_pk(code),
                                      ConsistentRead=True).get("Item")
        return None if item is None else item_record(item)

    def existing(self, code: str) -> Record:
        record = self.get(code)
        if record is None:
            raise NotFound(f"no dynamic QR code {code}", id=code)
        return record

    def create(self, target: str, rules: tuple[Rule, ...], options: QrSpec,
               origin: str | None = None) -> Record:
        """A new code (a fresh random one if the drawn code exists), its image in S3; its
        short link on base_url (PUBLIC_BASE_URL), or else on `origin` (the API's own)."""
        from dataclasses import replace

        from chalicelib.qr.render import render

        base_url = self.base_url or origin
        if not base_url:
            raise PulseError("PUBLIC_BASE_URL is not set and the request does not say "
                             "where it reached the API: dynamic codes need the stage's "
                             "public origin")
        now = int(self.clock())
        for _ in range(3):
            code = new_code()
            spec = replace(options, url=short_url(base_url, code))
            key = f"qr/dynamic/{code}.{spec.format}"
            item = {
                **_pk(code), "target": {"S": target}, "rules": {"S": _rules_json(rules)},
                "url": {"S": spec.url}, "format": {"S": spec.format},
                "size": {"N": str(spec.size)}, "border": {"N": str(spec.border)},
                "error_correction": {"S": spec.error_correction}, "fg": {"S": spec.fg},
                "bg": {"S": spec.bg}, "key": {"S": key}, "created_at": {"N": str(now)},
                "updated_at": {"N": str(now)},
            }
            try:
                self.dynamodb.put_item(TableName=self.table, Item=item,
                                       ConditionExpression="attribute_not_exists(pk)")
            except self.dynamodb.exceptions.ConditionalCheckFailedException:
                continue  # 2**-57 per live code: practically never
            self.put_image(spec, key, render(spec))
            return item_record(item)
        raise PulseError("could not draw an unused short code")  # pragma: no cover

    def put_image(self, spec: QrSpec, key: str, body: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=spec.content_type,
                           CacheControl="private, max-age=3600")

    def image(self, record: Record) -> bytes:
        """The image bytes: from S3, or rendered again (and stored) when the bucket's
        lifecycle has removed the object."""
        try:
            return self.s3.get_object(Bucket=self.bucket, Key=record.key)["Body"].read()
        except self.s3.exceptions.NoSuchKey:
            from chalicelib.qr.render import render

            body = render(record.spec)
            self.put_image(record.spec, record.key, body)
            return body

    def presign(self, record: Record, seconds: int) -> str:
        return self.s3.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": record.key}, ExpiresIn=seconds)

    def update(self, code: str, patch: Patch) -> Record:
        """Apply a PATCH to a live code: its new record; 404 unknown, 410 retired."""
        names, values, sets = {}, {":now": {"N": str(int(self.clock()))}}, ["updated_at = :now"]
        if patch.target is not None:
            sets.append("target = :target")
            values[":target"] = {"S": patch.target}
        if patch.rules is not None:
            sets.append("#rules = :rules")
            names["#rules"] = "rules"
            values[":rules"] = {"S": _rules_json(patch.rules)}
        return self._change(code, "SET " + ", ".join(sets), names, values)

    def retire(self, code: str) -> Record:
        return self._change(code, "SET deleted_at = :now", {},
                            {":now": {"N": str(int(self.clock()))}})

    def _change(self, code: str, expression: str, names: dict, values: dict) -> Record:
        try:
            item = self.dynamodb.update_item(
                TableName=self.table, Key=_pk(code), UpdateExpression=expression,
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(deleted_at)",
                **({"ExpressionAttributeNames": names} if names else {}),
                ExpressionAttributeValues=values, ReturnValues="ALL_NEW")["Attributes"]
        except self.dynamodb.exceptions.ConditionalCheckFailedException:
            self.existing(code)  # 404 when it never existed; else it was retired
            raise Gone(f"dynamic QR code {code} was deleted", id=code) from None
        return item_record(item)
