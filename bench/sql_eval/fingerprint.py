"""A dump's fingerprint: whether a loaded database or a built SQLite file still matches its dump."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

# Part of every fingerprint: bump it when the way a dump is loaded or built changes, so old copies are redone.
_BUILDER_VERSION = 2

_CREATE_TABLE = re.compile(r"^\s*CREATE\s+(?:UNLOGGED\s+)?TABLE\b", re.IGNORECASE | re.MULTILINE)
_RELATIVE_TIME = re.compile(
    r"\b(?:CURRENT_DATE|CURRENT_TIMESTAMP|CURRENT_TIME|LOCALTIMESTAMP|LOCALTIME|NOW\s*\(\s*\))", re.IGNORECASE
)


@dataclass(frozen=True)
class Fingerprint:
    sha256: str  # of the dump's bytes and _BUILDER_VERSION
    tables: int  # CREATE TABLE statements in the dump
    relative: bool  # the dump's rows depend on the day it is loaded

    def current_on(self, built_on: str | None) -> bool:
        return not self.relative or built_on == today_utc().isoformat()


def fingerprint_of(dump: Path) -> Fingerprint:
    data = dump.read_bytes()
    text = data.decode("utf-8")
    digest = hashlib.sha256(data + f"\0builder={_BUILDER_VERSION}".encode()).hexdigest()
    return Fingerprint(digest, len(_CREATE_TABLE.findall(text)), bool(_RELATIVE_TIME.search(text)))


def today_utc() -> dt.date:
    return dt.datetime.now(dt.timezone.utc).date()
