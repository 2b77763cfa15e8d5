"""The quality gate: score a release on the evaluation set through the OpenAI API, judge it.

Both releases are scored the same way, by any OpenAI-compatible server (kubellm serve,
vLLM): perplexity from each prompt's own tokens, asked as vLLM allows it (``echo: true``,
``logprobs``, ``max_tokens: 0``), pooled over all the set's tokens; the match rate from a
greedy completion of each prompt that has a reference:

- ``exact``: the answer's first non-blank line, whitespace collapsed, equals the reference
  (whitespace collapsed);
- ``contains``: the reference, whitespace collapsed, occurs in the answer.

The answers are untrusted (a release under test may be anything): a body is read up to a
bound, parsed through ``untrusted.loads``, and a logprob that is not a finite number <= 0,
or a list that is not one, makes the score unusable, never a number. Judging is a pure
function and fails closed: a release that could not be scored fails, and the relative
objective needs production's score; a first release (no production) is judged on the
absolute objective (``minMatchRate``) only, which its reasons say.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any, Literal

from kubellm.api import untrusted
from kubellm.loadtests.evaluation import EvalItem
from kubellm.loadtests.slo import InputError
from kubellm.loadtests.verdict import Verdict

__all__ = [
    "MAX_RESPONSE_BYTES",
    "QualityObjectives",
    "QualityReport",
    "Scores",
    "judge_quality",
    "matches",
    "parse_quality",
    "perplexity_regression_percent",
    "prompt_logprobs",
    "score_release",
]

Match = Literal["exact", "contains"]
MAX_RESPONSE_BYTES = 8 * 1024 * 1024
#: most logprobs one answer may carry (far above any prompt limit)
MAX_TOKENS_PER_PROMPT = 200_000
#: tolerance for a logprob a hair above 0 (float rounding of log_softmax)
LOGPROB_EPSILON = 1e-4


@dataclass(frozen=True)
class QualityObjectives:
    max_perplexity_regression_percent: float | None = None
    min_match_rate: float | None = None
    match: Match = "exact"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"match": self.match}
        if self.max_perplexity_regression_percent is not None:
            out["maxPerplexityRegressionPercent"] = self.max_perplexity_regression_percent
        if self.min_match_rate is not None:
            out["minMatchRate"] = self.min_match_rate
        return out


def parse_quality(text: str, *, source: str = "--quality") -> QualityObjectives:
    """``maxPerplexityRegressionPercent=20,minMatchRate=0.8,match=contains`` (any subset)."""
    values: dict[str, str] = {}
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        name, sep, value = item.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not value:
            raise InputError(f"{source}: {item!r} is not name=value")
        if name not in ("maxPerplexityRegressionPercent", "minMatchRate", "match"):
            raise InputError(
                f"{source}: unknown objective {name!r} (maxPerplexityRegressionPercent, "
                "minMatchRate, match)"
            )
        if name in values:
            raise InputError(f"{source}: {name} is given twice")
        values[name] = value

    def number(name: str, high: float) -> float | None:
        if name not in values:
            return None
        try:
            value = float(values[name])
        except ValueError:
            raise InputError(f"{source}: {name}={values[name]!r} is not a number") from None
        if not math.isfinite(value) or not 0 <= value <= high:
            raise InputError(f"{source}: {name}={values[name]} must be between 0 and {high:g}")
        return value

    match = values.get("match", "exact")
    if match not in ("exact", "contains"):
        raise InputError(f"{source}: match={match!r} must be exact or contains")
    return QualityObjectives(
        max_perplexity_regression_percent=number("maxPerplexityRegressionPercent", 10_000),
        min_match_rate=number("minMatchRate", 1),
        match="contains" if match == "contains" else "exact",
    )


@dataclass(frozen=True)
class Scores:
    """One release's scores on the set, or why it has none."""

    perplexity: float | None = None
    tokens: int = 0
    prompts: int = 0
    matched: int = 0
    references: int = 0
    problem: str | None = None

    @property
    def match_rate(self) -> float | None:
        return self.matched / self.references if self.references else None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "perplexity": None if self.perplexity is None else round(self.perplexity, 6),
            "scoredTokens": self.tokens,
            "prompts": self.prompts,
            "references": self.references,
            "matched": self.matched,
            "matchRate": None if self.match_rate is None else round(self.match_rate, 6),
        }
        if self.problem:
            out["problem"] = self.problem
        return out


def prompt_logprobs(body: Any) -> list[float]:
    """The logprobs of a scoring answer's prompt tokens after the first; ValueError when the
    answer is not a legacy completions ``logprobs`` object of finite numbers <= 0."""
    try:
        values = body["choices"][0]["logprobs"]["token_logprobs"]
    except (KeyError, IndexError, TypeError):
        raise ValueError("the answer has no choices[0].logprobs.token_logprobs") from None
    if not isinstance(values, list) or len(values) > MAX_TOKENS_PER_PROMPT:
        raise ValueError("token_logprobs is not a list of a sane length")
    out: list[float] = []
    for i, value in enumerate(values):
        if value is None and i == 0:
            continue  # the first token has no context (OpenAI, vLLM)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"token_logprobs[{i}] is not a number")
        number = float(value)
        if not math.isfinite(number) or number > LOGPROB_EPSILON:
            raise ValueError(f"token_logprobs[{i}] = {value!r} is not a log-probability")
        out.append(min(number, 0.0))
    return out


def _collapse(text: str) -> str:
    return " ".join(text.split())


def matches(answer: str, reference: str, mode: Match) -> bool:
    if mode == "contains":
        return _collapse(reference) in _collapse(answer)
    first = next((line for line in answer.splitlines() if line.strip()), "")
    return _collapse(first) == _collapse(reference)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A release under test answers for itself: a redirect is an error, never followed."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect())


def _post(url: str, body: dict[str, Any], api_key: str | None, timeout: float) -> Any:
    headers = {"Content-Type": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    try:
        with _OPENER.open(request, timeout=timeout) as resp:
            data = resp.read(MAX_RESPONSE_BYTES + 1)
    except urllib.error.HTTPError as exc:
        detail = exc.read(500).decode("utf-8", errors="replace").strip()
        raise ValueError(f"HTTP {exc.code}: {detail[:300]}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise ValueError(f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}") from None
    if len(data) > MAX_RESPONSE_BYTES:
        raise ValueError(f"the answer is larger than {MAX_RESPONSE_BYTES} bytes")
    try:
        return untrusted.loads(data)
    except ValueError as exc:
        raise ValueError(f"the answer is not JSON ({exc})") from None


def _answer_text(body: Any) -> str:
    try:
        text = body["choices"][0]["text"]
    except (KeyError, IndexError, TypeError):
        raise ValueError("the answer has no choices[0].text") from None
    if not isinstance(text, str):
        raise ValueError("choices[0].text is not a string")
    return text


def score_release(
    base_url: str,
    model: str,
    items: list[EvalItem],
    *,
    match: Match = "exact",
    max_tokens: int = 32,
    api_key: str | None = None,
    timeout_s: float = 60.0,
) -> Scores:
    """Score the release at ``base_url`` on ``items``; the first failed request ends it
    with a ``problem`` (a score over part of the set would not compare with production's)."""
    url = f"{base_url}/v1/completions"
    total, tokens, matched, references = 0.0, 0, 0, 0
    for number, item in enumerate(items, start=1):
        try:
            body = {"model": model, "prompt": item.prompt, "echo": True, "max_tokens": 0}
            values = prompt_logprobs(_post(url, {**body, "logprobs": 1}, api_key, timeout_s))
            total += sum(values)
            tokens += len(values)
            if item.reference is not None:
                answer = _post(
                    url,
                    {"model": model, "prompt": item.prompt, "max_tokens": max_tokens,
                     "temperature": 0},
                    api_key,
                    timeout_s,
                )  # fmt: skip
                references += 1
                matched += matches(_answer_text(answer), item.reference, match)
        except ValueError as exc:
            return Scores(problem=f"evaluation prompt {number}: {exc}", prompts=number - 1)
    if tokens == 0:
        return Scores(
            prompts=len(items), problem="no prompt has two tokens or more: nothing to score"
        )
    return Scores(
        perplexity=math.exp(-total / tokens),
        tokens=tokens,
        prompts=len(items),
        matched=matched,
        references=references,
    )


def perplexity_regression_percent(candidate: float, baseline: float) -> float:
    """How much higher (in %) the candidate's perplexity is than production's."""
    return (candidate - baseline) / baseline * 100.0


def judge_quality(
    candidate: Scores, objectives: QualityObjectives, baseline: Scores | None
) -> tuple[list[str], list[str]]:
    """(reasons to refuse, notes): every missed or unjudgeable objective is a reason."""
    reasons: list[str] = []
    notes: list[str] = []
    if candidate.problem or candidate.perplexity is None:
        return [f"quality: the candidate could not be scored: {candidate.problem}"], notes
    limit = objectives.max_perplexity_regression_percent
    if limit is not None:
        if baseline is None:
            notes.append(
                f"quality: maxPerplexityRegressionPercent={limit:g} not judged: no production "
                "release to compare with (a first version is judged on absolute objectives)"
            )
        elif baseline.problem or baseline.perplexity is None:
            reasons.append(
                f"quality: production could not be scored ({baseline.problem}); "
                f"maxPerplexityRegressionPercent={limit:g} cannot be judged"
            )
        else:
            regression = perplexity_regression_percent(candidate.perplexity, baseline.perplexity)
            if regression > limit:
                reasons.append(
                    f"quality: perplexity {candidate.perplexity:.3f} is {regression:.1f}% above "
                    f"production's {baseline.perplexity:.3f} on {candidate.prompts} evaluation "
                    f"prompts, exceeding maxPerplexityRegressionPercent={limit:g}"
                )
    minimum = objectives.min_match_rate
    if minimum is not None:
        rate = candidate.match_rate
        if rate is None:
            reasons.append(
                f"quality: minMatchRate={minimum:g} needs references, and no prompt has one"
            )
        elif rate < minimum:
            reasons.append(
                f"quality: match rate {rate:.3f} ({candidate.matched} of "
                f"{candidate.references} {objectives.match}) is below minMatchRate={minimum:g}"
            )
    return reasons, notes


@dataclass(frozen=True)
class QualityReport:
    """Both releases' scores and what they mean for the verdict (verdict.json's ``quality``)."""

    objectives: QualityObjectives
    candidate: Scores
    baseline: Scores | None = None

    @property
    def regression_percent(self) -> float | None:
        base = self.baseline
        if self.candidate.perplexity is None or base is None or base.perplexity is None:
            return None
        return perplexity_regression_percent(self.candidate.perplexity, base.perplexity)

    def judged(self) -> tuple[list[str], list[str]]:
        return judge_quality(self.candidate, self.objectives, self.baseline)

    def add_to(self, verdict: Verdict) -> Verdict:
        """The load test's verdict with the quality gate's reasons added (fails if any)."""
        reasons, _ = self.judged()
        return Verdict(passed=verdict.passed and not reasons, reasons=(*verdict.reasons, *reasons))

    def to_dict(self) -> dict[str, Any]:
        reasons, notes = self.judged()
        regression = self.regression_percent
        return {
            "objectives": self.objectives.to_dict(),
            "candidate": self.candidate.to_dict(),
            "baseline": self.baseline.to_dict() if self.baseline else None,
            "perplexityRegressionPercent": None if regression is None else round(regression, 3),
            "passed": not reasons,
            "reasons": reasons,
            "notes": notes,
        }
