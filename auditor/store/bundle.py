"""The evidence bundle: every observation a report rests on, and every payload they reference, in
one file that travels with the report (``evidence/bundle.jsonl.gz`` in the run folder, embedded in
the PDF when it is small enough).

An auditor re-performs a report from it (``auditor reperform``) without the evidence store: the
observations are rebuilt by the same pure function the store uses
(``auditor.store.records.observation_from_record``) and evaluated again. It is gzip-compressed
JSON Lines, readable with standard tools (``zcat bundle.jsonl.gz | jq -c 'select(.record ==
"observation")'``), one JSON object per line:

``{"record": "bundle", "format": "bitbucket-auditor/evidence-bundle", "version": 1,
"kind": "period" | "single"}``
    first line.
``{"record": "observation", <every field of the store's observations table>, "parts": [{"query",
"kind", "position", "repository", "sha256", "observed_at"}, …]}``
    one per observation, oldest first within each workspace; ``hash`` is the SHA-256 over every
    other field and the parts (``auditor.store.records.observation_hash``), ``previous_hash`` the
    hash of the workspace's observation before it, so the chain can be checked. A single run's
    observation has ``sequence`` 0: it was never in a store's chain.
``{"record": "payload", "sha256", "size", "content"}``
    one per payload, de-duplicated as in the store: ``content`` is the payload's exact text (the
    canonical JSON of a result part, or a GraphQL document), whose UTF-8 bytes hash to ``sha256``
    (``jq -rj .content | sha256sum``). Should a payload hold a secret registered with
    ``auditor.redaction`` (an answer that echoed a token), it is masked and the record says
    ``"masked": true``: secrets never leave the machine, and that payload cannot be re-performed.
``{"record": "end", "observations": N, "payloads": M}``
    last line: a bundle without it was cut short.

The gzip header carries no time, so the same observations always give the same bytes.
"""

from __future__ import annotations

import gzip
import io
import itertools
import json
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from auditor.evidence import Observation
from auditor.redaction import redact
from auditor.store.payloads import DOCUMENT, REPOSITORY, sha256_hex
from auditor.store.records import (
    ObservationRecord,
    observation_from_record,
    observation_hash,
    parse_payload,
    record_from_json,
    record_to_json,
    utc,
)

BUNDLE_NAME = "evidence/bundle.jsonl.gz"
BUNDLE_FORMAT = "bitbucket-auditor/evidence-bundle"
BUNDLE_VERSION = 1
PERIOD = "period"
SINGLE = "single"


class BundleError(ValueError):
    """A bundle that cannot be read at all: not gzip, not JSON Lines, not a bundle."""


class BundleWriter:
    """Writes a bundle line by line (nothing of it is held in memory): the header, then
    ``observation`` records and ``payload`` records in any order, then ``close``."""

    def __init__(self, stream: IO[bytes], *, kind: str) -> None:
        self._gzip = gzip.GzipFile(fileobj=stream, mode="wb", mtime=0, compresslevel=6)
        self._text = io.TextIOWrapper(self._gzip, encoding="utf-8", newline="\n")
        self.observations = 0
        self.payloads = 0
        self._line(
            {
                "record": "bundle",
                "format": BUNDLE_FORMAT,
                "version": BUNDLE_VERSION,
                "kind": kind,
            }
        )

    def _line(self, item: Mapping[str, Any]) -> None:
        self._text.write(json.dumps(item, ensure_ascii=False, sort_keys=True) + "\n")

    def observation(self, row: Mapping[str, Any], links: Iterable[Mapping[str, Any]]) -> None:
        parts = [
            {
                "query": link["query"],
                "kind": link["kind"],
                "position": link["position"],
                "repository": link["repository"],
                "sha256": link["sha256"],
                # Stores older than revision 0003 did not record when a part was read: at the
                # observation's own time.
                "observed_at": _iso(link.get("observed_at", row["observed_at"])),
            }
            for link in links
        ]
        self._line({"record": "observation", **record_to_json(row), "parts": parts})
        self.observations += 1

    def payload(self, sha256: str, content: bytes) -> None:
        text = content.decode("utf-8")
        masked = redact(text)
        item = {"record": "payload", "sha256": sha256, "size": len(content), "content": masked}
        if masked != text:
            item["masked"] = True
        self._line(item)
        self.payloads += 1

    def close(self) -> None:
        self._line({"record": "end", "observations": self.observations, "payloads": self.payloads})
        self._text.flush()
        self._text.detach()
        self._gzip.close()


def _iso(value: Any) -> str | None:
    return utc(value).isoformat() if value is not None else None


def write_records(stream: IO[bytes], records: Iterable[ObservationRecord], kind: str) -> None:
    """A whole bundle of ``records`` (observations with their payloads in hand) into
    ``stream``; a payload several observations share is written once."""
    writer = BundleWriter(stream, kind=kind)
    written: set[str] = set()
    pending: dict[str, bytes] = {}
    for record in records:
        writer.observation(record.row, record.links)
        pending.update(
            (sha, content) for sha, content in record.contents.items() if sha not in written
        )
        written.update(record.contents)
    for sha in sorted(pending):
        writer.payload(sha, pending[sha])
    writer.close()


@dataclass
class BundleRecord:
    """One observation as the bundle carries it."""

    row: dict[str, Any]
    links: list[dict[str, Any]]


@dataclass
class Bundle:
    """A bundle read back: its kind, observations and payload texts (by SHA-256)."""

    kind: str
    records: list[BundleRecord]
    contents: dict[str, bytes]
    declared: dict[str, int]  # the end record's counts ({} when it is missing)
    masked: set[str] = field(default_factory=set)  # payloads a secret was masked in
    problems: list[str] = field(default_factory=list)  # what reading alone found wrong

    def observation(self, record: BundleRecord, cache: dict[str, Any]) -> Observation:
        """``record`` rebuilt (``cache``: parsed payloads shared between observations)."""
        for link in record.links:
            sha = link["sha256"]
            if sha not in cache:
                cache[sha] = parse_payload(link["kind"], self.contents[sha])
        return observation_from_record(record.row, record.links, cache)

    def parts(self, workspace: str | None = None) -> BundleParts:
        """Its observations (of ``workspace``; None: all) as a ``PartsProvider``
        (``auditor.store.chunks``)."""
        return BundleParts(self, workspace)

    def workspaces(self) -> list[str]:
        return sorted({record.row["workspace"] for record in self.records})

    def last_records(self, workspace: str) -> ObservationRecord:
        """The workspace's last observation with its payloads in hand."""
        record = max(
            (r for r in self.records if r.row["workspace"] == workspace),
            key=lambda r: r.row["observed_at"],
        )
        return ObservationRecord(
            record.row,
            record.links,
            {link["sha256"]: self.contents[link["sha256"]] for link in record.links},
        )

    def observations(self) -> Iterator[Observation]:
        """Every observation, oldest first (then by workspace)."""
        cache: dict[str, Any] = {}
        ordered = sorted(self.records, key=lambda r: (r.row["observed_at"], r.row["workspace"]))
        for record in ordered:
            yield self.observation(record, cache)


class BundleParts:
    """A bundle's observations read a chunk of repositories at a time, as from the store."""

    def __init__(self, bundle: Bundle, workspace: str | None = None) -> None:
        self.bundle = bundle
        self._records = sorted(
            (r for r in bundle.records if workspace is None or r.row["workspace"] == workspace),
            key=lambda r: (r.row["observed_at"], r.row["workspace"]),
        )
        self._shared: dict[str, Any] = {}

    def rows(self) -> list[dict[str, Any]]:
        return [record.row for record in self._records]

    def repositories(self) -> list[str]:
        return sorted(
            {
                link["repository"]
                for record in self._records
                for link in record.links
                if link["kind"] == REPOSITORY and link["repository"]
            }
        )

    def links(self, repositories: Collection[str] | None) -> dict[str, list[dict[str, Any]]]:
        wanted = set(repositories or ())
        return {
            record.row["observation_id"]: [
                link
                for link in record.links
                if link["kind"] != REPOSITORY or link["repository"] in wanted
            ]
            for record in self._records
        }

    def contents(self, links: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        content: dict[str, Any] = {}
        for link in links:
            sha = link["sha256"]
            if sha in content:
                continue
            if link["kind"] != REPOSITORY and sha in self._shared:
                content[sha] = self._shared[sha]
                continue
            content[sha] = parse_payload(link["kind"], self.bundle.contents[sha])
            if link["kind"] != REPOSITORY:
                self._shared[sha] = content[sha]
        return content


def bundle_of_records(records: Iterable[ObservationRecord], kind: str) -> Bundle:
    """A bundle in memory, from observations with their payloads in hand (as if written and read
    back)."""
    held = list(records)
    contents: dict[str, bytes] = {}
    for record in held:
        contents.update(record.contents)
    return Bundle(
        kind,
        [BundleRecord(dict(record.row), [dict(link) for link in record.links]) for record in held],
        contents,
        {"observations": len(held), "payloads": len(contents)},
    )


def read_bundle(source: Path | IO[bytes]) -> Bundle:
    """Read a bundle (a path or a binary stream). Raises ``BundleError`` when it is not one."""
    stream = source.open("rb") if isinstance(source, Path) else source
    header: dict[str, Any] | None = None
    records: list[BundleRecord] = []
    contents: dict[str, bytes] = {}
    declared: dict[str, int] = {}
    problems: list[str] = []
    masked: set[str] = set()
    try:
        with gzip.GzipFile(fileobj=stream, mode="rb") as unzipped:
            for number, line in enumerate(io.TextIOWrapper(unzipped, encoding="utf-8"), 1):
                try:
                    item = json.loads(line)
                except json.JSONDecodeError as error:
                    raise BundleError(f"line {number} is not JSON: {error}") from None
                kind = item.get("record") if isinstance(item, dict) else None
                if number == 1:
                    if kind != "bundle" or item.get("format") != BUNDLE_FORMAT:
                        raise BundleError("it does not start with an evidence bundle header")
                    if item.get("version") != BUNDLE_VERSION:
                        raise BundleError(f"bundle version {item.get('version')!r} is unknown")
                    header = item
                elif kind == "observation":
                    records.append(_record(item, number))
                elif kind == "payload":
                    sha = str(item.get("sha256"))
                    if sha in contents:
                        problems.append(f"payload {sha} appears twice (line {number})")
                    contents[sha] = str(item.get("content", "")).encode("utf-8")
                    if item.get("masked"):
                        masked.add(sha)
                    elif len(contents[sha]) != item.get("size"):
                        problems.append(
                            f"payload {sha} is {len(contents[sha])} bytes, its record says "
                            f"{item.get('size')} (line {number})"
                        )
                elif kind == "end":
                    declared = {
                        "observations": int(item.get("observations", -1)),
                        "payloads": int(item.get("payloads", -1)),
                    }
                else:
                    raise BundleError(f"line {number} is not a bundle record")
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise BundleError(f"it is not a readable gzip file of JSON lines: {error}") from None
    finally:
        if isinstance(source, Path):
            stream.close()
    if header is None:
        raise BundleError("it is empty")
    if not declared:
        problems.append("the bundle was cut short: it has no end record")
    elif declared != {"observations": len(records), "payloads": len(contents)}:
        problems.append(
            f"the bundle's end record counts {declared['observations']} observations and "
            f"{declared['payloads']} payloads; it holds {len(records)} and {len(contents)}"
        )
    return Bundle(
        str(header.get("kind")),
        records,
        contents,
        declared,
        masked,
        problems,
    )


def _record(item: Mapping[str, Any], number: int) -> BundleRecord:
    try:
        row = record_from_json(item)
        links = [
            {
                **part,
                "observation_id": row["observation_id"],
                "observed_at": utc(datetime.fromisoformat(part["observed_at"]))
                if part.get("observed_at")
                else None,
            }
            for part in item["parts"]
        ]
    except (KeyError, TypeError, ValueError) as error:
        raise BundleError(f"line {number}: malformed observation record ({error})") from None
    return BundleRecord(row, links)


@dataclass(frozen=True)
class BundleBreak:
    """One thing ``check_bundle`` found wrong, naming the observation (and payload) concerned."""

    message: str
    observation_id: str | None = None
    payload: str | None = None


def check_bundle(bundle: Bundle) -> list[BundleBreak]:
    """Recompute every payload's SHA-256, every observation's hash and every link of each
    workspace's chain that the bundle holds (an empty list: it is intact)."""
    breaks = [BundleBreak(problem) for problem in bundle.problems]
    altered: dict[str, str] = {}
    for sha, content in bundle.contents.items():
        if sha in bundle.masked:
            altered[sha] = "had a secret masked when the bundle was written: it cannot be checked"
        elif sha256_hex(content) != sha:
            altered[sha] = "does not match its SHA-256: its content was changed"
    chains: dict[str, list[BundleRecord]] = {}
    for record in bundle.records:
        row = record.row
        oid = row["observation_id"]
        if observation_hash(row, record.links) != row["hash"]:
            breaks.append(
                BundleBreak(
                    f"observation {oid} of {row['workspace']} ({row['observed_at']:%Y-%m-%d %H:%M}"
                    "Z) does not match its hash: its record or its list of payloads was changed",
                    oid,
                )
            )
        for link in record.links:
            sha = link["sha256"]
            problem = altered.get(sha) or (
                "is missing from the bundle" if sha not in bundle.contents else None
            )
            if problem is not None:
                what = link["repository"] or (
                    "query document" if link["kind"] == DOCUMENT else "workspace part"
                )
                breaks.append(
                    BundleBreak(
                        f"observation {oid} of {row['workspace']}: payload {sha} ({what}, query "
                        f"{link['query']}) {problem}",
                        oid,
                        sha,
                    )
                )
        if row["sequence"]:
            chains.setdefault(row["workspace"], []).append(record)
    for workspace, members in chains.items():
        members.sort(key=lambda r: r.row["sequence"])
        for before, after in itertools.pairwise(members):
            if after.row["sequence"] != before.row["sequence"] + 1:
                breaks.append(
                    BundleBreak(
                        f"observation(s) #{before.row['sequence'] + 1}-#"
                        f"{after.row['sequence'] - 1} of {workspace} between "
                        f"{before.row['observation_id']} and {after.row['observation_id']} are "
                        "missing from the bundle",
                        after.row["observation_id"],
                    )
                )
            elif after.row["previous_hash"] != before.row["hash"]:
                breaks.append(
                    BundleBreak(
                        f"observation {after.row['observation_id']} of {workspace} does not "
                        "follow the hash of the observation before it: the chain is broken here",
                        after.row["observation_id"],
                    )
                )
    return breaks
