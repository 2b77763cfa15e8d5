"""The quality gate: the evaluation set is untrusted and bounded, scores are read from
untrusted answers, the verdict fails closed; settings, summary, tags and metrics carry it."""

from __future__ import annotations

import json
import math

import pytest

from kubellm.api.results import LoadTestSummary
from kubellm.loadtests.evaluation import (
    MAX_EVALUATION_BYTES,
    MAX_EVALUATION_ITEMS,
    MAX_PROMPT_CHARS,
    EvalItem,
    load_evaluation,
    parse_evaluation,
)
from kubellm.loadtests.quality import (
    QualityObjectives,
    QualityReport,
    Scores,
    judge_quality,
    matches,
    parse_quality,
    perplexity_regression_percent,
    prompt_logprobs,
)
from kubellm.loadtests.report import mlflow_metrics, termination_summary, version_tags
from kubellm.loadtests.settings import settings_from_args
from kubellm.loadtests.slo import InputError
from kubellm.loadtests.verdict import Verdict

from .test_settings_and_report import BASE, parse


def test_jsonl_and_yaml_sets_read_the_same() -> None:
    jsonl = '{"prompt": "2+2=", "reference": "4"}\n\n{"text": "Hello"}\n'
    yaml_text = "- prompt: 2+2=\n  reference: '4'\n- prompt: Hello\n"
    expected = [EvalItem("2+2=", "4"), EvalItem("Hello", None)]
    assert parse_evaluation(jsonl) == expected
    assert parse_evaluation(yaml_text) == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "no items"),
        ('{"prompt": "a"}\n{"prompt": ', "not valid JSON"),
        ('{"prompt": ""}', "non-empty string"),
        ('{"prompt": 3}', "non-empty string"),
        ('{"prompt": "a", "reference": ["x"]}', "'reference'"),
        ('{"prompt": "' + "x" * (MAX_PROMPT_CHARS + 1) + '"}', "characters"),
        ("prompt: a", "list of items"),
        ("- 3\n", "mapping"),
        ("- [unclosed", "not valid YAML"),
        ('{"prompt": "\\ud800"}', "UTF-8"),
        ("[" * 100_000, "nested too deep"),
        ('{"prompt": ' * 100_000, "not valid JSON"),
        ('{"prompt": "a"}\n' * (MAX_EVALUATION_ITEMS + 1), f"more than {MAX_EVALUATION_ITEMS}"),
        ("- prompt: a\n" * (MAX_EVALUATION_ITEMS + 1), f"at most {MAX_EVALUATION_ITEMS}"),
    ],
)
def test_hostile_or_bad_sets_are_refused_with_the_reason(text: str, why: str) -> None:
    with pytest.raises(InputError, match=why):
        parse_evaluation(text, source="set")


def test_a_yaml_bomb_does_not_expand() -> None:
    bomb = "a: &a ['x','x']\nb: &b [*a,*a]\nc: &c [*b,*b]\nd: [*c,*c]\n"
    with pytest.raises(InputError, match="list of items"):
        parse_evaluation(bomb)
    lst = "- &a {prompt: p}\n" + "- *a\n" * 10
    assert len(parse_evaluation(lst)) == 11


def test_files_are_read_with_a_size_bound_and_a_prompt_limit(tmp_path) -> None:
    path = tmp_path / "eval.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"p{i}"}) + "\n" for i in range(10)))
    assert [i.prompt for i in load_evaluation(str(path), limit=3)] == ["p0", "p1", "p2"]
    assert len(load_evaluation(path.as_uri())) == 10
    big = tmp_path / "big.jsonl"
    big.write_bytes(b" " * (MAX_EVALUATION_BYTES + 1))
    with pytest.raises(InputError, match="larger than"):
        load_evaluation(str(big))
    with pytest.raises(InputError, match="cannot read"):
        load_evaluation(str(tmp_path / "missing.jsonl"))
    with pytest.raises(InputError, match="not a path"):
        load_evaluation("http://example/eval.jsonl")


def test_quality_objectives_parse_and_refuse_bad_ones() -> None:
    obj = parse_quality("maxPerplexityRegressionPercent=20, minMatchRate=0.5,match=contains")
    assert obj == QualityObjectives(20.0, 0.5, "contains")
    assert parse_quality("") == QualityObjectives()
    for bad in ("minMatchRate=2", "match=fuzzy", "x=1", "minMatchRate", "minMatchRate=nan",
                "match=exact,match=exact", "maxPerplexityRegressionPercent=-1"):  # fmt: skip
        with pytest.raises(InputError):
            parse_quality(bad)


def _answer(values: object) -> dict[str, object]:
    return {"choices": [{"text": "", "logprobs": {"token_logprobs": values}}]}


def test_prompt_logprobs_skip_the_first_and_refuse_what_is_not_a_logprob() -> None:
    assert prompt_logprobs(_answer([None, -1.0, -0.5, 0])) == [-1.0, -0.5, 0.0]
    for bad in ([None, 0.5], [None, float("nan")], [None, "x"], [None, None], [None, True], "x"):
        with pytest.raises(ValueError):
            prompt_logprobs(_answer(bad))
    for bad_body in ({}, {"choices": []}, {"choices": [{"logprobs": None}]}, [1]):
        with pytest.raises(ValueError):
            prompt_logprobs(bad_body)


def test_exact_compares_the_first_line_contains_searches_the_answer() -> None:
    assert matches("  Canberra \nmore text", "Canberra", "exact")
    assert not matches("Canberra is the capital", "Canberra", "exact")
    assert matches("It is  Canberra, of course", "Canberra,", "contains")
    assert not matches("Sydney", "Canberra", "contains")


def test_perplexity_20_percent_worse_than_production_is_refused() -> None:
    obj = QualityObjectives(max_perplexity_regression_percent=20)
    prod = Scores(perplexity=10.0, tokens=100, prompts=5)
    assert perplexity_regression_percent(12.5, 10.0) == pytest.approx(25.0)
    reasons, _ = judge_quality(Scores(perplexity=12.5, tokens=100, prompts=5), obj, prod)
    assert len(reasons) == 1 and "25.0% above production's 10.000" in reasons[0]
    assert "maxPerplexityRegressionPercent=20" in reasons[0]
    assert judge_quality(Scores(perplexity=11.9, tokens=100, prompts=5), obj, prod)[0] == []
    assert judge_quality(Scores(perplexity=8.0, tokens=100, prompts=5), obj, prod)[0] == []


def test_first_version_is_judged_on_absolute_objectives_only() -> None:
    obj = QualityObjectives(max_perplexity_regression_percent=20, min_match_rate=0.5)
    good = Scores(perplexity=50.0, tokens=10, prompts=2, matched=1, references=2)
    reasons, notes = judge_quality(good, obj, None)
    assert reasons == [] and "first version" in notes[0]
    bad = Scores(perplexity=50.0, tokens=10, prompts=2, matched=0, references=2)
    reasons, _ = judge_quality(bad, obj, None)
    assert reasons == ["quality: match rate 0.000 (0 of 2 exact) is below minMatchRate=0.5"]


def test_unscored_releases_fail_closed() -> None:
    obj = QualityObjectives(max_perplexity_regression_percent=20)
    broken = Scores(problem="evaluation prompt 1: HTTP 400: echo is not supported")
    assert "could not be scored" in judge_quality(broken, obj, None)[0][0]
    ok = Scores(perplexity=5.0, tokens=3, prompts=1)
    assert "production could not be scored" in judge_quality(ok, obj, broken)[0][0]
    no_refs = QualityObjectives(min_match_rate=0.1)
    assert "needs references" in judge_quality(ok, no_refs, None)[0][0]


def test_quality_reasons_join_the_load_test_verdict() -> None:
    report = QualityReport(
        QualityObjectives(max_perplexity_regression_percent=20),
        Scores(perplexity=30.0, tokens=10, prompts=2, matched=1, references=1),
        Scores(perplexity=20.0, tokens=10, prompts=2, matched=1, references=1),
    )
    verdict = report.add_to(Verdict(passed=True, reasons=()))
    assert not verdict.passed and "50.0% above" in verdict.reasons[0]
    doc = {
        "verdict": "fail",
        "reasons": list(verdict.reasons),
        "figures": {"p95LatencyMs": 12.0},
        "quality": report.to_dict(),
        "settings": {"modelVersion": "2", "registeredModel": "bot"},
    }
    summary = LoadTestSummary.from_message(json.dumps(termination_summary(doc)))
    assert (summary.perplexity, summary.baseline_perplexity) == (30.0, 20.0)
    assert summary.perplexity_regression_percent == pytest.approx(50.0)
    assert summary.match_rate == 1.0 and summary.baseline_match_rate == 1.0
    tags = version_tags(doc)
    assert tags["kubellm.loadtest.perplexity"] == "30"
    assert tags["kubellm.loadtest.baseline_perplexity"] == "20"
    assert tags["kubellm.loadtest.perplexity_regression_percent"] == "50"
    metrics = mlflow_metrics(doc)
    assert metrics["perplexity"] == 30.0 and metrics["baseline_perplexity"] == 20.0
    assert math.isclose(metrics["perplexity_regression_percent"], 50.0)


def test_hostile_quality_figures_in_a_termination_message_are_dropped() -> None:
    message = json.dumps({"verdict": "pass", "perplexity": "NaN", "matchRate": [1]})
    summary = LoadTestSummary.from_message(message.replace('"NaN"', "NaN"))
    assert summary.perplexity is None and summary.match_rate is None


def test_settings_read_the_set_and_check_the_objectives_need(tmp_path) -> None:
    path = tmp_path / "eval.yaml"
    path.write_text("- prompt: Hello there\n- prompt: 2+2=\n  reference: '4'\n")
    args = [*BASE, "--evaluation", str(path), "--quality", "minMatchRate=0.5"]
    s = settings_from_args(parse(args))
    assert s.evaluation == str(path) and len(s.evaluation_items) == 2
    assert s.quality.min_match_rate == 0.5
    with pytest.raises(InputError, match="needs --baseline"):
        settings_from_args(parse([*args[:-1], "maxPerplexityRegressionPercent=20"]))
    with pytest.raises(InputError, match="needs --evaluation"):
        settings_from_args(parse([*BASE, "--quality", "minMatchRate=0.5"]))
    no_refs = tmp_path / "plain.jsonl"
    no_refs.write_text('{"prompt": "Hello"}\n')
    with pytest.raises(InputError, match="reference answers"):
        settings_from_args(parse([*BASE, "--evaluation", str(no_refs), "--quality",
                                  "minMatchRate=0.5"]))  # fmt: skip
    with pytest.raises(InputError, match="--eval-max-prompts"):
        settings_from_args(parse([*args, "--eval-max-prompts", "100000"]))
