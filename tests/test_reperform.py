"""Re-performance: the report hands an auditor the evidence that decided each verdict, and
`auditor reperform` reaches the same verdicts from it alone (README, "For auditors")."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.cli import main
from auditor.controls.catalog import load_catalog
from auditor.controls.exceptions import load_exceptions
from auditor.controls.period import evaluate_period
from auditor.demo_quarter import demo_period_options
from auditor.store.bundle import check_bundle, read_bundle

BUNDLE = "evidence/bundle.jsonl.gz"


def reperform(*arguments: str):
    return CliRunner().invoke(main, ["reperform", *arguments])


def finding(folder: Path, control_id: str, resource: str) -> dict:
    document = json.loads((folder / "findings.json").read_text())
    (found,) = [
        f
        for f in document["findings"]
        if f["control_id"] == control_id and f["resource"] == resource
    ]
    return found


def bundle_lines(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def test_the_period_run_folder_is_reperformed_identically(period_folder):
    result = reperform(str(period_folder))
    assert result.exit_code == 0, result.output
    total = len(json.loads((period_folder / "findings.json").read_text())["findings"])
    assert f"{total} of {total} findings re-performed identically" in result.output
    assert "period evidence of 14 observation(s)" in result.output


def test_the_pdf_alone_is_reperformed_identically(period_folder, tmp_path):
    alone = tmp_path / "received.pdf"  # no run folder beside it
    shutil.copy(period_folder / "report.pdf", alone)
    result = reperform(str(alone))
    assert result.exit_code == 0, result.output
    assert "findings re-performed identically" in result.output


def test_a_fail_names_the_observations_that_decided_it(period_folder):
    # acme/ml-models was public at the observation of 2026-09-23 only.
    row = finding(period_folder, "AC-1", "acme/ml-models")
    assert row["status"] == "FAIL"
    roles = [(d["role"], d["observed_at"][:10]) for d in row["decided_by"]]
    assert roles == [
        ("last passing", "2026-09-16"),
        ("first failing", "2026-09-23"),
        ("fixed", "2026-09-30"),
    ]
    first_failing = row["decided_by"][1]
    assert row["observation_id"] == first_failing["observation_id"]
    assert row["observed_at"].startswith("2026-09-23")
    # The value shown is the one the deciding observation saw, not the last one's.
    assert row["observed"] == "public"
    assert row["evidence_sha256"] == ";".join(first_failing["sha256"])


def test_the_bundle_holds_the_failing_observation_and_its_payload(period_folder):
    row = finding(period_folder, "AC-1", "acme/ml-models")
    lines = bundle_lines(period_folder / BUNDLE)
    observations = {
        line["observation_id"]: line for line in lines if line["record"] == "observation"
    }
    payloads = {line["sha256"]: line for line in lines if line["record"] == "payload"}
    assert len(observations) == 14
    failing = observations[row["observation_id"]]
    (sha,) = row["evidence_sha256"].split(";")
    assert sha in {part["sha256"] for part in failing["parts"]}
    content = payloads[sha]["content"]
    # Readable with standard tools, and the evidence of the failure: the repository was public.
    assert hashlib.sha256(content.encode("utf-8")).hexdigest() == sha
    assert json.loads(content)["repository"]["fullName"] == "acme/ml-models"
    assert json.loads(content)["repository"]["isPrivate"] is False
    # The last observation's evidence file (also in the folder) shows it private again.
    inventory = json.loads((period_folder / "evidence" / "inventory.json").read_text())
    repositories = inventory["results"]["acme"]["data"]["workspace"]["repositories"]
    (last,) = [r for r in repositories if r["fullName"] == "acme/ml-models"]
    assert last["isPrivate"] is True


def test_the_pdf_and_manifest_carry_the_bundle_and_inputs(period_folder):
    from auditor.reporting.manifest import pdf_attachments

    attachments = pdf_attachments(period_folder / "report.pdf")
    for name in (
        BUNDLE,
        "findings.json",
        "inputs/evaluation.json",
        "inputs/controls.yaml",
        "inputs/exceptions.yaml",
        "inputs/credential.json",
    ):
        assert name in attachments, name
        assert attachments[name] == (period_folder / name).read_bytes(), name
    manifest = json.loads((period_folder / "manifest.json").read_text())
    assert BUNDLE in {entry["path"] for entry in manifest["files"]}


def test_an_edited_finding_is_named_with_both_statuses(period_folder, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(period_folder, copy)
    document = json.loads((copy / "findings.json").read_text())
    for item in document["findings"]:
        if item["control_id"] == "AC-1" and item["resource"] == "acme/ml-models":
            item["status"] = "PASS"
    (copy / "findings.json").write_text(json.dumps(document))
    result = reperform(str(copy))
    assert result.exit_code == 5, result.output
    assert "DIFFERS  AC-1 acme/ml-models: recorded PASS, re-performed FAIL" in result.output
    assert "1 finding(s) differ" in result.output


def test_an_edited_payload_names_its_observation(period_folder, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(period_folder, copy)
    row = finding(copy, "AC-1", "acme/ml-models")
    (sha,) = row["evidence_sha256"].split(";")
    lines = bundle_lines(copy / BUNDLE)
    for line in lines:
        if line["record"] == "payload" and line["sha256"] == sha:
            line["content"] = line["content"].replace('"isPrivate":false', '"isPrivate":true')
    with gzip.open(copy / BUNDLE, "wt", encoding="utf-8") as out:
        out.writelines(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
    result = reperform(str(copy))
    assert result.exit_code == 5, result.output
    assert (
        f"observation {row['observation_id']} of acme: payload {sha} (acme/ml-models, query "
        "inventory) does not match its SHA-256" in result.output
    )
    # And the verdict the altered payload would give is not taken for the recorded one.
    assert "DIFFERS  AC-1 acme/ml-models: recorded FAIL, re-performed PASS" in result.output


def test_a_removed_observation_breaks_the_chain(period_folder):
    bundle = read_bundle(period_folder / BUNDLE)
    assert check_bundle(bundle) == []
    seventh = next(r for r in bundle.records if r.row["sequence"] == 7)
    bundle.records.remove(seventh)
    breaks = [item.message for item in check_bundle(bundle)]
    assert any(message.startswith("observation(s) #7-#7 of acme between") for message in breaks)


def test_a_folder_without_its_bundle_is_refused_naming_what_is_missing(period_folder, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(period_folder, copy)
    (copy / BUNDLE).unlink()
    (copy / "report.pdf").unlink()
    result = reperform(str(copy))
    assert result.exit_code == 2, result.output
    assert "bundle" in result.output


@pytest.fixture(scope="module")
def single_folder(tmp_path_factory) -> Path:
    """A single demo run (one observation) with a PDF whose attach limit keeps the bundle out."""
    out = tmp_path_factory.mktemp("single") / "run"
    result = CliRunner().invoke(
        main,
        ["run", "--demo", "--out", str(out), "--format", "pdf,json", "--attach-limit", "15kB"],
    )
    assert result.exit_code == 0, result.output
    return out


def test_a_single_run_is_one_observation_and_reperforms(single_folder):
    run_id = json.loads((single_folder / "run.json").read_text())["run_id"]
    row = finding(single_folder, "CM-1", "acme/payments-api")
    assert [(d["role"], d["observation_id"]) for d in row["decided_by"]] == [("observed", run_id)]
    lines = bundle_lines(single_folder / BUNDLE)
    assert lines[0]["kind"] == "single"
    result = reperform(str(single_folder))
    assert result.exit_code == 0, result.output
    assert "single evidence of 1 observation(s)" in result.output


def test_a_bundle_over_the_attach_limit_is_named_not_embedded(single_folder, tmp_path):
    from auditor.reporting.manifest import pdf_attachments

    assert (single_folder / BUNDLE).stat().st_size > 15000
    attachments = pdf_attachments(single_folder / "report.pdf")
    assert BUNDLE not in attachments
    listed = json.loads(attachments["evidence-hashes.json"])
    (entry,) = [e for e in listed["files"] if e["path"] == BUNDLE]
    assert entry["embedded"] is False
    alone = tmp_path / "received.pdf"
    shutil.copy(single_folder / "report.pdf", alone)
    refused = reperform(str(alone))
    assert refused.exit_code == 2, refused.output
    assert entry["sha256"] in refused.output
    given = reperform(str(alone), "--bundle", str(single_folder / BUNDLE))
    assert given.exit_code == 0, given.output


def test_an_exception_over_part_of_the_period_says_what_it_covered(quarter, tmp_path):
    # AC-3 fails for acme/payments-api at the observations of 09-02 and 09-09; an exception
    # that expired on 09-05 covered only the first: the resource FAILs from 09-09.
    exceptions = tmp_path / "exceptions.yaml"
    exceptions.write_text(
        "- id: EXC-PART\n"
        "  control: AC-3\n"
        "  resource: acme/payments-api\n"
        "  reason: Migration administrators.\n"
        "  approved_by: Jane Roe\n"
        "  ticket: SEC-1\n"
        "  expires: 2026-09-05\n"
        "- id: EXC-ALL\n"
        "  control: AC-4\n"
        "  resource: acme/payments-api\n"
        "  reason: Migration grants.\n"
        "  approved_by: Jane Roe\n"
        "  ticket: SEC-2\n"
        "  expires: 2026-12-31\n"
    )
    catalog = load_catalog()
    result = evaluate_period(
        quarter.observations,
        catalog,
        load_exceptions(exceptions, catalog),
        period=demo_period_options().period,
        evaluated_on=date(2026, 10, 1),
    )
    findings = result.findings
    partly = findings[
        (findings["control_id"] == "AC-3") & (findings["resource"] == "acme/payments-api")
    ]
    assert partly["status"].tolist() == ["FAIL"]
    assert (
        "failing from 2026-09-09 (last observed excepted 2026-09-02), fixed by 2026-09-16"
        in partly["reason"].iloc[0]
    )
    wholly = findings[
        (findings["control_id"] == "AC-4") & (findings["resource"] == "acme/payments-api")
    ]
    assert wholly["status"].tolist() == ["EXCEPTED"]
    reason = wholly["reason"].iloc[0]
    assert (
        "failing from 2026-09-02 (last observed passing 2026-08-26), fixed by 2026-09-16" in reason
    )
    assert "exception EXC-ALL covered it at each failing observation" in reason
    assert "Held throughout" not in reason


def test_a_secret_in_a_payload_never_reaches_the_bundle(tmp_path):
    """An answer that echoed a registered secret is masked in the bundle, and re-performance
    says that payload cannot be checked rather than trusting or failing it silently."""
    import io

    from auditor.redaction import register_secret
    from auditor.store.bundle import PERIOD, BundleWriter
    from auditor.store.payloads import sha256_hex

    secret = "bbat-canary-3f9c2a7d41e0b6"
    register_secret(secret)
    content = json.dumps({"errors": [], "repository": {"description": secret}}).encode()
    stream = io.BytesIO()
    writer = BundleWriter(stream, kind=PERIOD)
    writer.payload(sha256_hex(content), content)
    writer.close()
    assert secret.encode() not in gzip.decompress(stream.getvalue())
    bundle = read_bundle(io.BytesIO(stream.getvalue()))
    assert bundle.masked == {sha256_hex(content)}
