"""A stage's test evidence lets a promotion pass only when it is green, recent and about the release promoted."""
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from components import catalog
from tools.ops import results
from tools.ops.release import release_digests, release_id
from tools.ops.results import Check, ResultError, StageResult

NOW = datetime(2026, 11, 29, 20, 0, tzinfo=timezone.utc)
DAY = timedelta(hours=24)


def green(**changes) -> StageResult:
    base = StageResult(kind="load", stack="staging", release="sha256:" + "a" * 64, finished_at="2026-11-29T18:00:00Z",
                       passed=True, source="k6 TestRun soma-ops/gateway-runs",
                       checks=(Check("gateway-runs p(95)", True, "182ms", "p(95)<300ms"),))
    return replace(base, **changes)


def test_a_green_recent_result_for_the_release_passes(tmp_path):
    results.write(tmp_path, green())
    assert results.require_green(tmp_path, "staging", "load", "sha256:" + "a" * 64, DAY, NOW).passed


@pytest.mark.parametrize("result, expected", [
    (green(passed=False, checks=(Check("gateway-runs p(99)", False, "912ms", "p(99)<800ms"),)), "failed (gateway-runs p(99))"),
    (green(finished_at="2026-11-27T18:00:00Z"), "a promotion needs one newer than 1 day"),
    (green(release="sha256:" + "b" * 64), "not the one being promoted"),
])
def test_a_red_stale_or_foreign_result_stops_the_promotion(tmp_path, result, expected):
    results.write(tmp_path, result)
    with pytest.raises(ResultError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        results.require_green(tmp_path, "staging", "load", "sha256:" + "a" * 64, DAY, NOW)


def test_a_missing_or_malformed_result_names_the_file(tmp_path):
    with pytest.raises(ResultError, match="no chaos result for staging"):
        results.require_green(tmp_path, "staging", "chaos", "sha256:" + "a" * 64, DAY, NOW)
    path = results.path_for(tmp_path, "staging", "load")
    path.parent.mkdir(parents=True)
    path.write_text('{"kind": "load", "finished_at": "yesterday"}')
    with pytest.raises(ResultError, match=str(path)):
        results.require_green(tmp_path, "staging", "load", "sha256:" + "a" * 64, DAY, NOW)


def test_the_release_id_names_every_pinned_digest():
    lock = catalog.load()
    digests = release_digests(lock)
    assert {key.split("/")[0] for key in digests} >= {"image", "chart"}
    assert len(digests) >= len(lock.images)
    moved = dict(digests, **{next(iter(digests)): "sha256:" + "0" * 64})
    assert release_id(moved) != release_id(digests)
    assert release_id(dict(reversed(list(digests.items())))) == release_id(digests)
