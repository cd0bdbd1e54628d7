"""The in-memory search back end: filters and orderings evaluated on rows, end to end from filter strings."""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field

import pytest

from mltrail.entities import RunStatus
from mltrail.search import (
    compile_filter,
    identifiers_in,
    matches,
    parse_experiment_filter,
    parse_experiment_order_by,
    parse_run_filter,
    parse_run_order_by,
    sort_rows,
)
from mltrail.search.ast import Comparison, Identifier, OrderKey
from mltrail.search.in_memory import like_to_regex

NAN = float("nan")


@dataclass
class FakeRun:
    """A run as a store would present it: every kind of value the search language can ask for."""

    run_id: str = "r0"
    start_time: int | None = 0
    end_time: int | None = None
    status: object = "FINISHED"
    run_name: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    #: key -> every value logged, for the min/max aggregates.
    history: dict[str, list[float]] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    #: one dict per dataset input: name, digest and optionally context.
    datasets: list[dict[str, str]] = field(default_factory=list)

    def value(self, identifier: Identifier) -> object | None:
        key = identifier.key
        if identifier.kind == "metric":
            if identifier.aggregate == "latest":
                return self.metrics.get(key)
            values = self.history.get(key)
            return (min if identifier.aggregate == "min" else max)(values) if values else None
        if identifier.kind == "param":
            return self.params.get(key)
        if identifier.kind == "tag":
            return self.tags.get(key)
        if identifier.kind == "dataset":
            return tuple(d.get(key) for d in self.datasets)
        return getattr(self, key, None)


@dataclass
class FakeExperiment:
    experiment_id: str
    name: str = "e"
    creation_time: int | None = 0
    last_update_time: int | None = 0
    tags: dict[str, str] = field(default_factory=dict)

    def value(self, identifier: Identifier) -> object | None:
        if identifier.kind == "tag":
            return self.tags.get(identifier.key)
        return getattr(self, identifier.key)


def run_matches(run: FakeRun, text: str) -> bool:
    return matches(run, parse_run_filter(text))


# -- comparisons ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metrics.acc = 0.5", True),
        ("metrics.acc != 0.5", False),
        ("metrics.acc < 0.6", True),
        ("metrics.acc <= 0.5", True),
        ("metrics.acc > 0.5", False),
        ("metrics.acc >= 0.5", True),
        ("metrics.acc > -1e3", True),
        ("metrics.acc.min = 0.1", True),
        ("metrics.acc.max = 0.9", True),
        ("metrics.acc.max < 0.9", False),
        ("metrics.`x.min` = 7", True),
        ("metrics.x.min = 7", False),
    ],
)
def test_metric_comparisons(text: str, expected: bool) -> None:
    run = FakeRun(metrics={"acc": 0.5, "x.min": 7.0}, history={"acc": [0.9, 0.1, 0.5]})
    assert run_matches(run, text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metrics.bad = 1", False),
        ("metrics.bad != 1", True),
        ("metrics.bad < 1", False),
        ("metrics.bad >= 1", False),
        ("NOT metrics.bad != 1", False),
        ("NOT metrics.bad = 1", True),
    ],
)
def test_nan_satisfies_only_not_equal(text: str, expected: bool) -> None:
    assert run_matches(FakeRun(metrics={"bad": NAN}), text) is expected


@pytest.mark.parametrize(
    "text",
    [
        "metrics.missing != 1",
        "metrics.missing < 1",
        "metrics.missing.min < 1",
        "params.missing != 'a'",
        "params.missing NOT IN ('a')",
        "params.missing LIKE '%'",
        "tags.missing != 'a'",
        "tags.missing IS NOT NULL",
        "end_time < 5",
        "end_time != 5",
        "run_name != 'x'",
        "datasets.name != 'x'",
        "datasets.name NOT IN ('x')",
    ],
)
def test_comparisons_on_missing_values_are_false(text: str) -> None:
    run = FakeRun()
    assert run_matches(run, text) is False
    assert run_matches(run, f"NOT ({text})") is True


def test_is_null() -> None:
    run = FakeRun(params={"p": "1"}, tags={"t": ""})
    assert run_matches(run, "params.q IS NULL")
    assert not run_matches(run, "params.p IS NULL")
    assert run_matches(run, "params.p IS NOT NULL")
    assert run_matches(run, "tags.t IS NOT NULL")  # an empty string is a value, not NULL
    assert not run_matches(run, "tags.t IS NULL")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("params.opt = 'adam'", True),
        ("params.opt = 'Adam'", False),
        ("params.opt != 'sgd'", True),
        ("params.opt IN ('sgd', 'adam')", True),
        ("params.opt NOT IN ('sgd', 'adam')", False),
        ("params.opt NOT IN ('sgd')", True),
        ("tags.team = 'nlp-core'", True),
        ("tags.`mlflow.runName` = 'blue-fox'", True),
        ("tags.mlflow.runName = 'blue-fox'", True),
    ],
)
def test_string_comparisons(text: str, expected: bool) -> None:
    run = FakeRun(params={"opt": "adam"}, tags={"team": "nlp-core", "mlflow.runName": "blue-fox"})
    assert run_matches(run, text) is expected


@pytest.mark.parametrize(
    ("pattern", "value", "like", "ilike"),
    [
        ("nlp%", "nlp-core", True, True),
        ("NLP%", "nlp-core", False, True),
        ("%core", "nlp-core", True, True),
        ("%-%", "nlp-core", True, True),
        ("nlp_core", "nlp-core", True, True),
        ("nlp_core", "nlp--core", False, False),
        ("nlp", "nlp-core", False, False),
        ("%", "", True, True),
        ("_", "", False, False),
        ("a.c", "abc", False, False),  # regex metacharacters are literal
        ("a.c", "a.c", True, True),
        ("(a|b)*", "(a|b)*", True, True),
        (r"100\%", "100%", True, True),
        (r"100\%", "1000", False, False),
        (r"a\_b", "a_b", True, True),
        (r"a\_b", "axb", False, False),
        (r"a\\b", "a\\b", True, True),
        (r"\a", "a", True, True),
        ("a%b", "a\nxyz\nb", True, True),  # % spans newlines
        ("straße%", "STRASSE", False, False),
        ("ÉCOLE", "école", False, True),
    ],
)
def test_like_and_ilike(pattern: str, value: str, like: bool, ilike: bool) -> None:
    quoted = pattern.replace("'", "''")
    run = FakeRun(params={"p": value})
    assert run_matches(run, f"params.p LIKE '{quoted}'") is like
    assert run_matches(run, f"params.p ILIKE '{quoted}'") is ilike


def test_like_regex_is_cached() -> None:
    assert like_to_regex("a%", True) is like_to_regex("a%", True)
    assert like_to_regex("a%", True) is not like_to_regex("a%", False)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("status = 'FINISHED'", True),
        ("attributes.status != 'FINISHED'", False),
        ("status IN ('RUNNING', 'FINISHED')", True),
        ("status LIKE 'FIN%'", True),
        ("status ILIKE 'fin%'", True),
        ("run_id = 'abc123'", True),
        ("run_uuid IN ('x', 'abc123')", True),
        ("run_name = 'blue-fox'", True),
        ("`Run Name` LIKE 'blue%'", True),
        ("start_time = 1000", True),
        ("start_time > 999.5", True),
        ("created >= 1001", False),
        ("end_time <= 2000", True),
        ("end_time != 2000", False),
    ],
)
def test_attribute_comparisons(text: str, expected: bool) -> None:
    run = FakeRun(run_id="abc123", start_time=1000, end_time=2000, status=RunStatus.FINISHED, run_name="blue-fox")
    assert run_matches(run, text) is expected


def test_non_string_values_compare_as_their_text() -> None:
    experiment = FakeExperiment(experiment_id=12)  # type: ignore[arg-type]
    assert matches(experiment, parse_experiment_filter("experiment_id = '12'"))
    assert matches(experiment, parse_experiment_filter("experiment_id IN (11, 12)"))
    assert matches(experiment, parse_experiment_filter("experiment_id LIKE '1%'"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("datasets.name = 'train'", True),
        ("datasets.name = 'eval'", True),
        ("datasets.name = 'other'", False),
        ("datasets.name != 'train'", True),  # another input is not named 'train'
        ("datasets.name IN ('x', 'eval')", True),
        ("datasets.name NOT IN ('train', 'eval')", False),
        ("datasets.digest LIKE 'ab%'", True),
        ("datasets.context = 'training'", True),
        ("datasets.context ILIKE 'EVAL%'", False),  # the eval input has no context
        ("NOT datasets.name = 'train'", False),
    ],
)
def test_dataset_comparisons_hold_for_any_input(text: str, expected: bool) -> None:
    run = FakeRun(
        datasets=[
            {"name": "train", "digest": "ab12", "context": "training"},
            {"name": "eval", "digest": "cd34"},
        ]
    )
    assert run_matches(run, text) is expected


def test_run_without_datasets_matches_no_dataset_comparison() -> None:
    assert not run_matches(FakeRun(), "datasets.name = 'train'")
    assert not run_matches(FakeRun(), "datasets.name NOT IN ('train')")


# -- boolean structure ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("params.a = '1' AND params.b = '2'", True),
        ("params.a = '1' AND params.b = '3'", False),
        ("params.a = '0' OR params.b = '2'", True),
        ("params.a = '0' OR params.b = '3'", False),
        ("NOT params.a = '0'", True),
        ("params.a = '0' AND params.b = '3' OR params.c = '3'", True),
        ("params.a = '0' AND (params.b = '3' OR params.c = '3')", False),
        ("NOT params.a = '1' OR params.b = '2'", True),
        ("NOT (params.a = '1' OR params.b = '0')", False),
        ("params.a = '1' AND NOT params.b = '2'", False),
        ("params.missing = '1' OR params.c = '3'", True),
    ],
)
def test_boolean_structure(text: str, expected: bool) -> None:
    assert run_matches(FakeRun(params={"a": "1", "b": "2", "c": "3"}), text) is expected


def test_no_filter_matches_everything() -> None:
    assert matches(FakeRun(), None)
    assert compile_filter(None)(FakeRun())


def test_compiled_filters_are_reused() -> None:
    expr = parse_run_filter("params.a = '1' AND metrics.m > 0")
    assert compile_filter(expr) is compile_filter(parse_run_filter("params.a = '1' AND metrics.m > 0"))
    run = FakeRun(params={"a": "1"}, metrics={"m": 1.0})
    assert all(matches(run, expr) for _ in range(3))


def test_experiment_filters() -> None:
    experiments = [
        FakeExperiment("1", name="alpha", creation_time=10, tags={"team": "nlp"}),
        FakeExperiment("2", name="beta", creation_time=20),
        FakeExperiment("10", name="Alphabet", creation_time=30, tags={"team": "cv"}),
    ]

    def ids(text: str) -> list[str]:
        expr = parse_experiment_filter(text)
        return [e.experiment_id for e in experiments if matches(e, expr)]

    assert ids("name LIKE 'alpha%'") == ["1"]
    assert ids("name ILIKE 'alpha%'") == ["1", "10"]
    assert ids("tags.team IS NULL") == ["2"]
    assert ids("tags.team != 'nlp'") == ["10"]
    assert ids("creation_time >= 20 OR experiment_id = '1'") == ["1", "2", "10"]
    assert ids("experiment_id NOT IN ('1', '2')") == ["10"]


# -- ordering ------------------------------------------------------------------------------------------------------


def ordered(runs: list[FakeRun], *clauses: str) -> list[str]:
    return [r.run_id for r in sort_rows(runs, parse_run_order_by(list(clauses)))]


def test_default_order_is_start_time_desc_then_run_id() -> None:
    runs = [FakeRun("b", start_time=1), FakeRun("a", start_time=1), FakeRun("c", start_time=2)]
    assert ordered(runs) == ["c", "a", "b"]


def test_metric_order_puts_nan_then_null_last_in_both_directions() -> None:
    runs = [
        FakeRun("null", metrics={}),
        FakeRun("nan", metrics={"m": NAN}),
        FakeRun("two", metrics={"m": 2.0}),
        FakeRun("neg", metrics={"m": -1.0}),
        FakeRun("inf", metrics={"m": math.inf}),
    ]
    assert ordered(runs, "metrics.m") == ["neg", "two", "inf", "nan", "null"]
    assert ordered(runs, "metrics.m DESC") == ["inf", "two", "neg", "nan", "null"]


def test_string_order_puts_null_last_in_both_directions() -> None:
    runs = [FakeRun("none")] + [FakeRun(p, params={"p": p}) for p in ("b", "B", "a")]
    assert ordered(runs, "params.p") == ["B", "a", "b", "none"]
    assert ordered(runs, "params.p DESC") == ["b", "a", "B", "none"]


def test_null_numeric_attribute_sorts_last() -> None:
    runs = [FakeRun("running", end_time=None), FakeRun("early", end_time=5), FakeRun("late", end_time=9)]
    assert ordered(runs, "end_time") == ["early", "late", "running"]
    assert ordered(runs, "end_time DESC") == ["late", "early", "running"]


def test_multiple_keys_with_mixed_directions_and_tie_breakers() -> None:
    runs = [
        FakeRun("r1", start_time=1, tags={"g": "x"}, metrics={"m": 1.0}),
        FakeRun("r2", start_time=2, tags={"g": "y"}, metrics={"m": 1.0}),
        FakeRun("r3", start_time=3, tags={"g": "x"}, metrics={"m": 2.0}),
        FakeRun("r4", start_time=3, tags={"g": "x"}, metrics={"m": 1.0}),
        FakeRun("r0", start_time=3, tags={"g": "x"}, metrics={"m": 1.0}),
        FakeRun("r5", start_time=4, metrics={"m": 1.0}),
    ]
    # g ASC (null last), then m DESC, then the implicit start_time DESC and run_id ASC.
    assert ordered(runs, "tags.g", "metrics.m DESC") == ["r3", "r0", "r4", "r1", "r2", "r5"]


def test_metric_aggregate_order() -> None:
    runs = [
        FakeRun("a", history={"loss": [0.5, 0.2]}),
        FakeRun("b", history={"loss": [0.3, 0.9]}),
        FakeRun("c"),
    ]
    assert ordered(runs, "metrics.loss.min") == ["a", "b", "c"]
    assert ordered(runs, "metrics.loss.max DESC") == ["b", "a", "c"]


def test_sort_is_stable_and_returns_a_new_list() -> None:
    runs = [FakeRun(f"r{i}", params={"p": str(i % 2)}) for i in range(10)]
    result = sort_rows(runs, [OrderKey(Identifier("param", "p"))])
    assert [r.run_id for r in result] == ["r0", "r2", "r4", "r6", "r8", "r1", "r3", "r5", "r7", "r9"]
    assert [r.run_id for r in runs] == [f"r{i}" for i in range(10)]
    assert sort_rows(runs, []) == runs


def test_experiment_order_treats_ids_as_numbers() -> None:
    experiments = [
        FakeExperiment("10", name="b", creation_time=1),
        FakeExperiment("9", name="a", creation_time=1),
        FakeExperiment("100", name="b", creation_time=2),
        FakeExperiment("0", name="c", creation_time=None),
    ]

    def ids(*clauses: str) -> list[str]:
        return [e.experiment_id for e in sort_rows(experiments, parse_experiment_order_by(list(clauses)))]

    assert ids() == ["100", "9", "10", "0"]
    assert ids("experiment_id") == ["0", "9", "10", "100"]
    assert ids("experiment_id DESC") == ["100", "10", "9", "0"]
    assert ids("name DESC") == ["0", "100", "10", "9"]  # ties on name: creation_time DESC


# -- identifiers_in ------------------------------------------------------------------------------------------------


def test_identifiers_in() -> None:
    expr = parse_run_filter("metrics.acc > 1 AND NOT (params.p = 'a' OR tags.t IS NULL) OR metrics.acc.min < 0")
    order = parse_run_order_by(["params.q"])
    assert identifiers_in(expr, order) == {
        Identifier("metric", "acc"),
        Identifier("metric", "acc", "min"),
        Identifier("param", "p"),
        Identifier("tag", "t"),
        Identifier("param", "q"),
        Identifier("attribute", "start_time"),
        Identifier("attribute", "run_id"),
    }
    assert identifiers_in(None) == set()
    assert identifiers_in(Comparison(Identifier("param", "x"), "=", "1")) == {Identifier("param", "x")}


# -- scale ---------------------------------------------------------------------------------------------------------


def test_filter_and_sort_100k_rows_quickly() -> None:
    rng = random.Random(7)
    runs = [
        FakeRun(
            f"{i:06d}",
            start_time=rng.randrange(1000),
            metrics={} if i % 50 == 0 else {"acc": NAN if i % 97 == 0 else rng.random()},
            params={"opt": rng.choice(["adam", "sgd", "rmsprop"])},
        )
        for i in range(100_000)
    ]
    expr = parse_run_filter("params.opt IN ('adam', 'sgd') AND (metrics.acc > 0.5 OR params.opt LIKE 'ad%')")
    order = parse_run_order_by(["metrics.acc DESC", "params.opt"])

    started = time.perf_counter()
    selected = [r for r in runs if matches(r, expr)]
    result = sort_rows(selected, order)
    elapsed = time.perf_counter() - started

    expected = sorted(
        selected,
        key=lambda r: (
            (0, -r.metrics["acc"])
            if "acc" in r.metrics and not math.isnan(r.metrics["acc"])
            else (1, 0.0)
            if "acc" in r.metrics
            else (2, 0.0),
            r.params["opt"],
            -r.start_time,  # type: ignore[operator]
            r.run_id,
        ),
    )
    assert [r.run_id for r in result] == [r.run_id for r in expected]
    assert elapsed < 3.0, f"filter + sort of 100k rows took {elapsed:.2f}s"
