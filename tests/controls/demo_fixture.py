"""The demo workspace's evidence, collected once from the simulator through the real collector.

Tests of the engine read the same evidence `auditor run --demo` does, so the demo's designed
verdicts (docs/DEMO.md) are checked against what the simulator serves, not a copy of it.
"""

from __future__ import annotations

import copy
import functools

from auditor.bitbucket.client import BitbucketClient, ClientSettings
from auditor.bitbucket.credentials import load_credential
from auditor.collector import collect
from auditor.evidence import Evidence
from auditor.period import parse_period
from auditor.simulator import Simulator, demo_dataset


@functools.cache
def _collected() -> Evidence:
    with Simulator(demo_dataset()) as simulator:
        env = simulator.credential_env("api_token")
        client = BitbucketClient(
            load_credential(env), ClientSettings.from_env(env, requests_per_hour=None)
        )
        return collect(client, ["acme"], parse_period("2026-Q3")).evidence


def demo_evidence() -> Evidence:
    """A private copy of the demo evidence (tests may modify their copy)."""
    return copy.deepcopy(_collected())


def member(display_name: str) -> str:
    """The AC-6 resource key of the demo member with ``display_name``."""
    members = _collected().tables["members"]
    uuid = members.loc[members["display_name"] == display_name, "user_uuid"].item()
    return f"acme:{uuid}"


def deploy_key(repository: str, label: str) -> str:
    keys = _collected().tables["deploy_keys"]
    row = keys[(keys["repository"] == repository) & (keys["label"] == label)]
    return f"{repository}:key:{row['key_id'].item()}"


def webhook(repository: str, url_start: str) -> str:
    hooks = _collected().tables["webhooks"]
    row = hooks[(hooks["repository"] == repository) & hooks["url"].str.startswith(url_start)]
    return f"{repository}:hook:{row['uuid'].item()}"
