"""Readable evidence: each resource by its human name, its stable key kept beside it, a link to
its page in Bitbucket Cloud, and its evidence pointers as paths into the run's ``evidence/*.json``.

Findings name resources by stable keys (``acme:{581288cd-…}``, ``acme/api:hook:{…}``,
``acme/api:key:134``) that an auditor cannot read. This module looks the names up in the
evidence tables: a member's display name, a webhook's URL host and description, a deploy key's
label and fingerprint, a pull request's title.

Links are built only from parts that pass strict checks — workspace and repository slugs made of
letters, digits, ``.``, ``_`` and ``-``, numeric pull-request and deploy-key ids — and are always
``https://bitbucket.org/…``: never from a URL or text Bitbucket returned, so Bitbucket data can
neither point a reader somewhere else nor make the PDF renderer fetch anything (links are
annotations; WeasyPrint does not follow them).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pandas as pd

from auditor.evidence import TABLES, Evidence
from auditor.store.bundle import BUNDLE_NAME

CLOUD_WEB = "https://bitbucket.org"
_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_DIGITS = re.compile(r"^[0-9]{1,12}$")
_UUID = re.compile(r"^\{?[0-9A-Fa-f-]{36}\}?$")
_REPOSITORY = re.compile(r"^(?P<workspace>[^/:#]+)/(?P<slug>[^/:#]+)")

# Which settings page shows the evidence a dataset comes from (repository-level resources).
_REPOSITORY_PAGES = {
    "branch_restrictions": ("admin/branch-restrictions", "branch restrictions"),
    "default_reviewers": ("admin/default-reviewers", "default reviewers"),
    "repository_grants": ("admin/permissions", "repository permissions"),
    "repository_permissions": ("admin/permissions", "repository permissions"),
    "pipelines": ("admin/pipelines/settings", "Pipelines settings"),
    "deploy_keys": ("admin/access-keys/", "access keys"),
    "webhooks": ("admin/webhooks", "webhooks"),
    "branch_head_statuses": ("commits", "commits and builds"),
    "build_statuses": ("commits", "commits and builds"),
}


@dataclass(frozen=True)
class ResourceLabel:
    name: str  # what a person reads: display name, webhook host, key label, …
    key: str  # the stable resource key of the findings ("" when it is the name)
    url: str  # https://bitbucket.org/… or "" when no safe link can be built
    link_title: str  # what the link opens, e.g. "branch restrictions in Bitbucket"


def _text(value: Any) -> str:
    if value is None or (not isinstance(value, list | dict) and pd.isna(value)):
        return ""
    return str(value)


def _safe_slug(value: str) -> str | None:
    return value if _SLUG.match(value) and ".." not in value else None


def repository_url(repository: str, page: str = "") -> str:
    """``https://bitbucket.org/<workspace>/<slug>[/<page>]``, or "" for an unsafe name."""
    workspace, _, slug = repository.partition("/")
    if not (_safe_slug(workspace) and _safe_slug(slug)):
        return ""
    return f"{CLOUD_WEB}/{workspace}/{slug}" + (f"/{page}" if page else "")


def repository_web_url(repository: str, api_url: str | None) -> str:
    """The repository's page, for a location outside the report (SARIF): on Bitbucket Cloud
    ``https://bitbucket.org/<workspace>/<slug>``; on Data Center (``api_url`` ends in
    ``/rest``) ``<server>/projects/<KEY>/repos/<slug>``. "" for an unsafe name."""
    base = (api_url or "").rstrip("/")
    if base.endswith("/rest"):
        project, _, slug = repository.partition("/")
        if not (_safe_slug(project) and _safe_slug(slug)) or _host(base) == "":
            return ""
        return f"{base.removesuffix('/rest')}/projects/{project}/repos/{slug}"
    return repository_url(repository)


def workspace_url(workspace: str, page: str = "workspace/settings") -> str:
    return f"{CLOUD_WEB}/{workspace}/{page}" if _safe_slug(workspace) else ""


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


def evidence_path(pointer: str) -> str:
    """``branch_restrictions:acme/api#17`` as ``evidence/branch_protection.json: branch_restrictions
    acme/api#17`` (the file holding the raw result, then the record)."""
    dataset, separator, record = pointer.partition(":")
    spec = TABLES.get(dataset)
    if not separator:
        return pointer
    if spec is None:
        if dataset == "collection_errors":
            return f"evidence/*.json (errors): {record}"
        return pointer
    return f"evidence/{spec.query}.json: {dataset} {record}"


def evidence_paths(pointers: str) -> tuple[str, ...]:
    return tuple(evidence_path(p.strip()) for p in pointers.split(";") if p.strip())


def bundle_paths(pointers: str) -> tuple[str, ...]:
    """A period row's evidence pointers, in the evidence bundle: ``evidence/bundle.jsonl.gz``,
    then ``repositories acme/ml-models`` (the observations and payloads that decided the row are
    named beside it, in its "decided by" lines)."""
    records = []
    for pointer in (p.strip() for p in pointers.split(";") if p.strip()):
        dataset, separator, record = pointer.partition(":")
        records.append(f"{dataset} {record}" if separator and dataset in TABLES else pointer)
    return (BUNDLE_NAME, *records)


class ResourceNamer:
    """Names and links for the resources of one run's findings."""

    def __init__(self, evidence: Evidence) -> None:
        self._members = self._index(evidence, "members", ("workspace", "user_uuid"))
        self._webhooks = self._index(evidence, "webhooks", ("repository", "uuid"))
        self._deploy_keys = self._index(evidence, "deploy_keys", ("repository", "key_id"))
        self._access_tokens = self._index(evidence, "access_tokens", ("repository", "token_id"))
        self._pull_requests = self._index(evidence, "pull_requests", ("repository", "pr_id"))

    @staticmethod
    def _index(evidence: Evidence, table: str, key: tuple[str, str]) -> dict[tuple[str, str], Any]:
        try:
            frame = evidence.table(table)
        except KeyError:
            return {}
        if not len(frame) or not set(key) <= set(frame.columns):
            return {}
        return {
            (_text(record[key[0]]), _text(record[key[1]])): record
            for record in frame.to_dict("records")
        }

    def label(self, resource_type: str, resource: str, evidence: str = "") -> ResourceLabel:
        """The readable name, key and link of one finding's resource."""
        builder = getattr(self, f"_{resource_type}", None)
        if builder is not None:
            return builder(resource, evidence)
        return ResourceLabel(resource, "", "", "")

    def _workspace(self, resource: str, evidence: str) -> ResourceLabel:
        url = workspace_url(resource)
        return ResourceLabel(resource, "", url, "workspace settings in Bitbucket" if url else "")

    def _repository(self, resource: str, evidence: str) -> ResourceLabel:
        dataset = evidence.split(":", 1)[0] if evidence else ""
        page, what = _REPOSITORY_PAGES.get(dataset, ("admin", "repository settings"))
        url = repository_url(resource, page)
        return ResourceLabel(resource, "", url, f"{what} in Bitbucket" if url else "")

    def _member(self, resource: str, evidence: str) -> ResourceLabel:
        workspace, _, user_uuid = resource.partition(":")
        record = self._members.get((workspace, user_uuid), {})
        name = _text(record.get("display_name")) or _text(record.get("nickname"))
        url = workspace_url(workspace) if _UUID.match(user_uuid) else ""
        return ResourceLabel(
            name or resource, resource if name else "", url, "workspace settings in Bitbucket"
        )

    def _webhook(self, resource: str, evidence: str) -> ResourceLabel:
        repository, _, hook = resource.partition(":hook:")
        record = self._webhooks.get((repository, hook), {})
        host = _host(_text(record.get("url")))
        description = _text(record.get("description"))
        parts = [part for part in (host, description) if part]
        name = f"{repository}: webhook {' — '.join(parts)}" if parts else resource
        url = repository_url(repository, "admin/webhooks")
        return ResourceLabel(name, resource if parts else "", url, "webhooks in Bitbucket")

    def _deploy_key(self, resource: str, evidence: str) -> ResourceLabel:
        if ":token:" in resource:  # a Data Center HTTP access token (AC-7/AC-8 there)
            repository, _, token_id = resource.partition(":token:")
            record = self._access_tokens.get((repository, token_id), {})
            token = _text(record.get("name"))
            scope = _text(record.get("scope"))
            name = f"{repository}: {scope} access token {token}".replace("  ", " ")
            return ResourceLabel(name if token else resource, resource if token else "", "", "")
        repository, _, key_id = resource.partition(":key:")
        record = self._deploy_keys.get((repository, key_id), {})
        label = _text(record.get("label")) or _text(record.get("comment"))
        fingerprint = _text(record.get("fingerprint"))
        parts = [part for part in (label, fingerprint) if part]
        name = f"{repository}: deploy key {' · '.join(parts)}" if parts else resource
        url = repository_url(repository, "admin/access-keys/") if _DIGITS.match(key_id) else ""
        return ResourceLabel(name, resource if parts else "", url, "access keys in Bitbucket")

    def _pull_request(self, resource: str, evidence: str) -> ResourceLabel:
        repository, _, number = resource.rpartition("#")
        record = self._pull_requests.get((repository, number), {})
        title = _text(record.get("title"))
        url = repository_url(repository, f"pull-requests/{number}") if _DIGITS.match(number) else ""
        name = f"{resource}: {title}" if title else resource
        return ResourceLabel(name, "", url, "the pull request in Bitbucket" if url else "")

    def _credential(self, resource: str, evidence: str) -> ResourceLabel:
        return ResourceLabel(resource, "", "", "")


def label_for(namer: ResourceNamer | None, record: Mapping[str, Any]) -> ResourceLabel:
    """The label of a findings record (``resource_type``, ``resource``, ``evidence``)."""
    resource = _text(record.get("resource"))
    if namer is None:
        return ResourceLabel(resource, "", "", "")
    return namer.label(_text(record.get("resource_type")), resource, _text(record.get("evidence")))
