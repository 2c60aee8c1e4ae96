"""The offline gate: report contents, waivers, enforcement levels and the CLI's exit codes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from policy_plans import UPSTREAM_IMAGE, hardened_plan, with_deployment
from policy_support import FIXTURE_CATALOG, with_fixture_catalog

from policies.config import load_config_file, stack_config_path
from policies.model import UNKNOWN_SENTINELS
from tools.gate import GateError, main, run_gate

UNKNOWN_STRING = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
ROOT_WAIVER = {"waivers.somaagenthub.io/non-root": "vendor image needs root until upstream fixes #123"}


def config(stack: str) -> dict[str, Any]:
    return with_fixture_catalog(load_config_file(stack_config_path(stack)))


def rooted(plan: dict[str, Any], **changes: Any) -> dict[str, Any]:
    plan = with_deployment(plan, **changes)
    plan["resources"][-1]["inputs"]["spec"]["template"]["spec"]["securityContext"]["runAsUser"] = 0
    return plan



def annotation_waivers(report):
    """The inventory's annotation waivers (the stack config's image entries are listed there too)."""
    return [use for use in report.waivers if not use.waiver.scope]

def test_hardened_prod_plan_passes_with_an_empty_report() -> None:
    report = run_gate(hardened_plan(), config("prod"))
    assert report.passed
    assert report.lines == ()
    assert report.resource_count == 5
    assert "Gate PASSED" in report.render()


def test_mandatory_violation_fails_and_is_reported() -> None:
    report = run_gate(rooted(hardened_plan()), config("prod"))
    assert not report.passed
    [line] = report.blocking
    assert (line.level, line.rule) == ("mandatory", "non-root")
    assert line.urn.endswith("kubernetes:apps/v1:Deployment::agent-api")
    text = report.render()
    assert "MANDATORY  non-root" in text and "runAsUser must not be 0" in text
    assert "Gate FAILED: 1 mandatory violation(s)" in text
    assert report.counts()["non-root"]["mandatory"] == 1


def test_dev_is_advisory() -> None:
    report = run_gate(rooted(hardened_plan("dev")), config("dev"))
    assert report.passed
    assert [(line.level, line.rule) for line in report.lines] == [("advisory", "non-root")]


def test_prod_refuses_upstream_images() -> None:
    report = run_gate(hardened_plan(image=UPSTREAM_IMAGE), config("prod"))
    assert [line.rule for line in report.blocking] == ["digest-pinned-images"]
    assert report.passed is False


def test_dev_accepts_any_waiver_with_a_reason() -> None:
    report = run_gate(rooted(hardened_plan("dev"), annotations=ROOT_WAIVER), config("dev"))
    [line] = report.lines
    assert line.level == "waived" and line.waiver is not None
    assert line.waiver.reason == ROOT_WAIVER["waivers.somaagenthub.io/non-root"]
    assert "waiver: vendor image needs root" in report.render()
    [use] = annotation_waivers(report)
    assert use.used and use.waiver.accepted


def test_prod_rejects_a_waiver_not_on_the_allow_list() -> None:
    report = run_gate(rooted(hardened_plan(), annotations=ROOT_WAIVER), config("prod"))
    [line] = report.blocking
    assert line.waiver is not None and not line.waiver.accepted
    assert "waiver rejected (waiver not on the prod allow list)" in report.render()
    assert "[rejected: waiver not on the prod allow list]" in report.render()


def test_prod_accepts_a_waiver_on_the_allow_list() -> None:
    prod = config("prod")
    prod["non-root"]["allowedWaivers"] = [{"resource": "Deployment/agents/agent-api", "reason": "tracked in #123"}]
    report = run_gate(rooted(hardened_plan(), annotations=ROOT_WAIVER), prod)
    assert report.passed
    assert [line.level for line in report.lines] == ["waived"]


def test_waiver_without_reason_is_rejected_even_in_dev() -> None:
    plan = rooted(hardened_plan("dev"), annotations={"waivers.somaagenthub.io/non-root": " "})
    report = run_gate(plan, config("dev"))
    assert [line.level for line in report.lines] == ["advisory"]
    assert annotation_waivers(report)[0].waiver.note == "waiver has no reason"


def test_every_waiver_is_listed_even_unused_or_misnamed() -> None:
    annotations = {
        "waivers.somaagenthub.io/read-only-root-filesystem": "not needed any more",
        "waivers.somaagenthub.io/no-such-rule": "typo",
    }
    report = run_gate(with_deployment(hardened_plan(), annotations=annotations), config("prod"))
    listed = {use.waiver.rule: use for use in annotation_waivers(report)}
    assert set(listed) == {"read-only-root-filesystem", "no-such-rule"}
    assert not listed["read-only-root-filesystem"].used
    assert listed["no-such-rule"].waiver.note == "no rule with that name"
    assert "(matches no violation)" in report.render()


def test_unknown_value_in_a_plan_blocks_in_prod() -> None:
    assert UNKNOWN_STRING in UNKNOWN_SENTINELS
    report = run_gate(with_deployment(hardened_plan(), image=UNKNOWN_STRING), config("prod"))
    [line] = report.blocking
    assert line.rule == "digest-pinned-images"
    assert "containers[0].image is unknown, so digest-pinned-images cannot decide" in line.message


def test_disabled_rule_does_not_run() -> None:
    """Only where the stack itself is advisory: a mandatory stack refuses a config that disables a rule."""
    prod = config("prod")
    prod["non-root"]["enforcementLevel"] = "disabled"
    assert run_gate(rooted(hardened_plan("dev")), prod).passed
    with pytest.raises(GateError, match="makes non-root advisory or disabled"):
        run_gate(rooted(hardened_plan("prod")), prod)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"all": "mandatory", "no-such-rule": "advisory"}, "unknown policies in config: no-such-rule"),
        ({"all": "blocking"}, "'blocking' is not an enforcement level"),
        ({"non-root": {"allowedRegistries": []}}, "keys not in its config schema: allowedRegistries"),
        ({"digest-pinned-images": {"catalogPath": "/nonexistent/platform.lock.yaml"}}, "cannot be read"),
    ],
)
def test_unusable_config_is_refused(document: dict[str, Any], message: str) -> None:
    with pytest.raises(GateError, match=message):
        run_gate(hardened_plan(), document)


def test_plan_without_resources_is_refused() -> None:
    with pytest.raises(GateError, match="no 'resources' list"):
        run_gate({"stack": "prod"}, config("prod"))


def write(tmp_path: Path, name: str, content: Any) -> Path:
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_cli_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    prod_config = write(tmp_path, "prod.json", config("prod"))
    good = write(tmp_path, "good.json", hardened_plan())
    bad = write(tmp_path, "bad.json", rooted(hardened_plan()))
    assert main(["--stack", "prod", "--plan", str(good), "--config", str(prod_config)]) == 0
    assert "Gate PASSED" in capsys.readouterr().out
    assert main(["--stack", "prod", "--plan", str(bad), "--config", str(prod_config)]) == 1
    assert "MANDATORY  non-root" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        (None, "does not exist; run `make render"),
        ("{not json", "is not valid JSON"),
        ("[]", "must be a JSON object"),
        (hardened_plan("dev"), "is for stack 'dev', not 'prod'"),
    ],
)
def test_cli_unusable_input_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], plan: Any, message: str
) -> None:
    prod_config = write(tmp_path, "prod.json", config("prod"))
    path = tmp_path / "missing.json" if plan is None else write(tmp_path, "plan.json", plan)
    assert main(["--stack", "prod", "--plan", str(path), "--config", str(prod_config)]) == 2
    assert message in capsys.readouterr().err


def test_cli_bad_config_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = write(tmp_path, "plan.json", hardened_plan())
    broken = write(tmp_path, "prod.json", "{")
    assert main(["--stack", "prod", "--plan", str(plan), "--config", str(broken)]) == 2
    assert "policy config" in capsys.readouterr().err


def test_fixture_catalog_exists() -> None:
    assert FIXTURE_CATALOG.is_file()
