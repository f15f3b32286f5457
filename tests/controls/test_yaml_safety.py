"""What a user-edited YAML file may not do, refused before anything is built from it, with
file:line:column (catalog, exceptions, run configuration and credential facts share the loader)."""

from __future__ import annotations

from pathlib import Path

import pytest

from auditor.config import load_run_config
from auditor.controls.catalog import load_catalog
from auditor.controls.exceptions import load_exceptions
from auditor.controls.facts import load_credential_facts
from auditor.controls.yamlsource import MAX_INPUT_BYTES, load_yaml
from auditor.errors import ConfigError

BILLION_LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
)
LOADERS = [load_catalog, load_exceptions, load_run_config, load_credential_facts]


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "input.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("load", LOADERS, ids=lambda f: f.__name__)
def test_an_alias_bomb_is_refused_at_its_first_anchor(tmp_path, load):
    path = write(tmp_path, BILLION_LAUGHS)
    with pytest.raises(ConfigError, match=rf"^{path}:1:4: YAML anchors \(&a\) are not accepted"):
        load(path)


def test_an_alias_is_refused_where_it_stands(tmp_path):
    path = write(tmp_path, "a: 1\nb: *a\n")
    with pytest.raises(ConfigError, match=rf"^{path}:2:4: YAML aliases \(\*a\)"):
        load_yaml(path)


@pytest.mark.parametrize(
    "text",
    ["- !!python/object:os.system {control: AC-1}\n", "a: !!str 3\n", "a: !custom x\n"],
)
def test_explicit_tags_are_refused(tmp_path, text):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=rf"^{path}:1:\d+: YAML tag .* is not accepted"):
        load_yaml(path)


def test_an_impossible_date_is_located(tmp_path):
    path = write(tmp_path, "- control: AC-1\n  expires: 2027-02-30\n")
    with pytest.raises(ConfigError, match=rf"^{path}:2:12: '2027-02-30' is not a real date"):
        load_exceptions(path)


def test_a_real_date_and_a_quoted_impossible_one_are_values(tmp_path):
    data = load_yaml(write(tmp_path, "a: 2027-02-28\nb: '2027-02-30'\n")).data
    assert str(data["a"]) == "2027-02-28"
    assert data["b"] == "2027-02-30"


def test_a_file_over_the_size_cap_is_refused_without_reading_it_all(tmp_path):
    path = write(tmp_path, "# x\n" * (MAX_INPUT_BYTES // 4 + 1))
    with pytest.raises(ConfigError, match="larger than 5 MB"):
        load_exceptions(path)


def test_a_binary_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_credential_facts(write(tmp_path, b"\xff\xfe\x00\x01"))
