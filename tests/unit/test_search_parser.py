"""The search-language parser: filter strings and order-by clauses to AST trees, and its error messages."""

from __future__ import annotations

import re

import pytest

from mltrail.errors import MltrailException
from mltrail.search import parse_experiment_filter, parse_experiment_order_by, parse_run_filter, parse_run_order_by
from mltrail.search.ast import And, Comparison, Identifier, Not, Or, OrderKey
from mltrail.search.parser import MAX_NESTING


def c(kind: str, key: str, op: str, value: object = None, aggregate: str = "latest") -> Comparison:
    return Comparison(Identifier(kind, key, aggregate), op, value)  # type: ignore[arg-type]


def attr(key: str) -> Identifier:
    return Identifier("attribute", key)


def invalid(call, *args) -> str:
    with pytest.raises(MltrailException) as info:
        call(*args)
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"
    return info.value.message


# -- identifiers ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "kind"),
    [
        ("metrics", "metric"),
        ("metric", "metric"),
        ("params", "param"),
        ("param", "param"),
        ("parameter", "param"),
        ("parameters", "param"),
        ("tags", "tag"),
        ("tag", "tag"),
        ("`metrics`", "metric"),
        ("METRICS", "metric"),
    ],
)
def test_every_prefix_alias(prefix: str, kind: str) -> None:
    value = 1.0 if kind == "metric" else "1"
    literal = "1" if kind == "metric" else "'1'"
    assert parse_run_filter(f"{prefix}.k = {literal}") == c(kind, "k", "=", value)


@pytest.mark.parametrize("prefix", ["attributes.", "attribute.", "attr.", "run.", ""])
def test_attribute_prefixes(prefix: str) -> None:
    assert parse_run_filter(f"{prefix}status = 'FINISHED'") == c("attribute", "status", "=", "FINISHED")


@pytest.mark.parametrize("prefix", ["datasets", "dataset"])
@pytest.mark.parametrize("key", ["name", "digest", "context"])
def test_dataset_identifiers(prefix: str, key: str) -> None:
    assert parse_run_filter(f"{prefix}.{key} = 'x'") == c("dataset", key, "=", "x")


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("run_id", "run_id"),
        ("run_uuid", "run_id"),
        ("run_name", "run_name"),
        ("`run name`", "run_name"),
        ("`Run name`", "run_name"),
        ("`Run Name`", "run_name"),
        ('"Run Name"', "run_name"),
        ("'run name'", "run_name"),
        ("attributes.`Run name`", "run_name"),
        ("status", "status"),
        ("user_id", "user_id"),
        ("artifact_uri", "artifact_uri"),
        ("lifecycle_stage", "lifecycle_stage"),
    ],
)
def test_string_attributes_and_aliases(written: str, canonical: str) -> None:
    assert parse_run_filter(f"{written} = 'v'") == c("attribute", canonical, "=", "v")


@pytest.mark.parametrize(
    ("written", "canonical"),
    [("start_time", "start_time"), ("end_time", "end_time"), ("created", "start_time"), ("Created", "start_time")],
)
def test_numeric_attributes_and_aliases(written: str, canonical: str) -> None:
    assert parse_run_filter(f"{written} >= 1700000000000") == c("attribute", canonical, ">=", 1700000000000)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("tags.`my tag` = 'x'", "my tag"),
        ("tags.\"my tag\" = 'x'", "my tag"),
        ("tags.'my tag' = 'x'", "my tag"),
        ("tags.mlflow.runName = 'x'", "mlflow.runName"),
        ("tags.`mlflow.runName` = 'x'", "mlflow.runName"),
        ("tags.`a``b` = 'x'", "a`b"),
        ("tags.`a b`.c = 'x'", "a b.c"),
        ("params.1 = 'x'", "1"),
        ("params.`a-b/c d` = 'x'", "a-b/c d"),
        ("params.ünïcode = 'x'", "ünïcode"),
    ],
)
def test_key_quoting_and_dots(text: str, key: str) -> None:
    (expr,) = [parse_run_filter(text)]
    assert isinstance(expr, Comparison)
    assert expr.identifier.key == key


def test_quoted_metric_keys() -> None:
    assert parse_run_filter('metrics."a-b" > 1') == c("metric", "a-b", ">", 1.0)
    assert parse_run_filter("metrics.`a b` > 1") == c("metric", "a b", ">", 1.0)


# -- metric aggregates ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "aggregate"),
    [
        ("metrics.loss.min < 0.1", "loss", "min"),
        ("metrics.loss.max < 0.1", "loss", "max"),
        ("metric.loss.max < 0.1", "loss", "max"),
        ("metrics.train.loss.min < 0.1", "train.loss", "min"),
        ("metrics.`train.loss`.min < 0.1", "train.loss", "min"),
        ('metrics."loss".max < 0.1', "loss", "max"),
        ("metrics.`x.min` < 0.1", "x.min", "latest"),
        ("metrics.x.`min` < 0.1", "x.min", "latest"),
        ("metrics.min < 0.1", "min", "latest"),
        ("metrics.loss.MIN < 0.1", "loss.MIN", "latest"),
    ],
)
def test_metric_aggregates(text: str, key: str, aggregate: str) -> None:
    assert parse_run_filter(text) == c("metric", key, "<", 0.1, aggregate)


def test_min_max_are_plain_key_parts_outside_metrics() -> None:
    assert parse_run_filter("params.lr.min = '1'") == c("param", "lr.min", "=", "1")
    assert parse_run_filter("tags.x.max = '1'") == c("tag", "x.max", "=", "1")


# -- operators and values ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("op", ["=", "!=", "<", "<=", ">", ">="])
def test_metric_operators(op: str) -> None:
    assert parse_run_filter(f"metrics.acc {op} 0.5") == c("metric", "acc", op, 0.5)


@pytest.mark.parametrize(
    ("literal", "value"),
    [("1", 1.0), ("-1", -1.0), ("0.25", 0.25), (".5", 0.5), ("2.", 2.0), ("1e-3", 1e-3), ("-1.5E+2", -150.0)],
)
def test_numeric_literals(literal: str, value: float) -> None:
    expr = parse_run_filter(f"metrics.acc>{literal}")
    assert expr == c("metric", "acc", ">", value)
    assert isinstance(expr.value, float)  # type: ignore[union-attr]


def test_numeric_attribute_values_are_ints_for_integer_literals() -> None:
    assert type(parse_run_filter("start_time > 12").value) is int  # type: ignore[union-attr]
    assert parse_run_filter("end_time < 1.5") == c("attribute", "end_time", "<", 1.5)


@pytest.mark.parametrize("kind", ["params", "tags"])
@pytest.mark.parametrize("op", ["=", "!=", "LIKE", "ILIKE"])
def test_key_value_string_operators(kind: str, op: str) -> None:
    assert parse_run_filter(f"{kind}.k {op} 'v%'") == c(kind[:-1], "k", op, "v%")


@pytest.mark.parametrize("kind", ["params", "tags"])
def test_in_and_null_on_params_and_tags(kind: str) -> None:
    assert parse_run_filter(f"{kind}.k IN ('a', \"b\")") == c(kind[:-1], "k", "IN", ("a", "b"))
    assert parse_run_filter(f"{kind}.k not in ('a')") == c(kind[:-1], "k", "NOT IN", ("a",))
    assert parse_run_filter(f"{kind}.k IS NULL") == c(kind[:-1], "k", "IS NULL")
    assert parse_run_filter(f"{kind}.k is not null") == c(kind[:-1], "k", "IS NOT NULL")


@pytest.mark.parametrize("op", ["=", "!=", "LIKE", "ILIKE"])
def test_string_attribute_operators(op: str) -> None:
    assert parse_run_filter(f"user_id {op} 'bob'") == c("attribute", "user_id", op, "bob")


def test_in_lists_on_attributes_and_datasets() -> None:
    assert parse_run_filter("run_id IN ('a','b','c')") == c("attribute", "run_id", "IN", ("a", "b", "c"))
    assert parse_run_filter("status NOT IN ('FAILED')") == c("attribute", "status", "NOT IN", ("FAILED",))
    assert parse_run_filter("datasets.digest IN ('d1')") == c("dataset", "digest", "IN", ("d1",))


def test_keywords_are_case_insensitive() -> None:
    assert parse_run_filter("params.p like 'a' and tags.t Ilike 'b' Or not status In ('X')") == Or(
        (
            And((c("param", "p", "LIKE", "a"), c("tag", "t", "ILIKE", "b"))),
            Not(c("attribute", "status", "IN", ("X",))),
        )
    )


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("'it''s'", "it's"),
        ('"say ""hi"""', 'say "hi"'),
        ("'a\"b'", 'a"b'),
        ("'back\\slash'", "back\\slash"),
        ("''", ""),
    ],
)
def test_string_literals(literal: str, value: str) -> None:
    assert parse_run_filter(f"params.p = {literal}") == c("param", "p", "=", value)


def test_like_pattern_keeps_escapes_for_the_back_ends() -> None:
    assert parse_run_filter(r"params.p LIKE '100\%'") == c("param", "p", "LIKE", "100\\%")
    assert parse_run_filter(r"params.p LIKE 'a\\'") == c("param", "p", "LIKE", "a\\\\")


def test_whitespace_is_free() -> None:
    assert parse_run_filter("  metrics.acc>=1AND(params.p='x')  ".replace("1AND", "1 AND")) == And(
        (c("metric", "acc", ">=", 1.0), c("param", "p", "=", "x"))
    )
    assert parse_run_filter("metrics.acc\t>\n1") == c("metric", "acc", ">", 1.0)


@pytest.mark.parametrize("text", [None, "", "   ", "\n"])
def test_empty_filter_is_none(text: str | None) -> None:
    assert parse_run_filter(text) is None
    assert parse_experiment_filter(text) is None


# -- boolean structure ---------------------------------------------------------------------------------------------

A = "params.a = '1'"
B = "params.b = '1'"
C = "params.c = '1'"
a, b, cc = c("param", "a", "=", "1"), c("param", "b", "=", "1"), c("param", "c", "=", "1")


@pytest.mark.parametrize(
    ("text", "tree"),
    [
        (f"{A} AND {B} AND {C}", And((a, b, cc))),
        (f"{A} OR {B} AND {C}", Or((a, And((b, cc))))),
        (f"{A} AND {B} OR {C}", Or((And((a, b)), cc))),
        (f"({A} OR {B}) AND {C}", And((Or((a, b)), cc))),
        (f"NOT {A} AND {B}", And((Not(a), b))),
        (f"NOT ({A} AND {B})", Not(And((a, b)))),
        (f"NOT NOT {A}", Not(Not(a))),
        (f"(({A}))", a),
        (f"{A} AND ({B} AND {C})", And((a, b, cc))),
        (f"({A} OR {B}) OR {C}", Or((a, b, cc))),
        (f"{A} OR NOT ({B} OR {C})", Or((a, Not(Or((b, cc)))))),
    ],
)
def test_precedence_and_parentheses(text: str, tree: object) -> None:
    assert parse_run_filter(text) == tree


def test_mlflow_style_filter() -> None:
    text = "metrics.acc > 0.9 and params.opt = 'adam' and tags.team LIKE 'nlp%' and attributes.status = 'FINISHED'"
    assert parse_run_filter(text) == And(
        (
            c("metric", "acc", ">", 0.9),
            c("param", "opt", "=", "adam"),
            c("tag", "team", "LIKE", "nlp%"),
            c("attribute", "status", "=", "FINISHED"),
        )
    )


def test_nesting_limit() -> None:
    ok = "(" * MAX_NESTING + A + ")" * MAX_NESTING
    assert parse_run_filter(ok) == a
    message = invalid(parse_run_filter, "(" * (MAX_NESTING + 1) + A + ")" * (MAX_NESTING + 1))
    assert "nesting" in message
    assert "nesting" in invalid(parse_run_filter, "NOT " * 5000 + A)


# -- experiments ---------------------------------------------------------------------------------------------------


def test_experiment_filters() -> None:
    assert parse_experiment_filter("name LIKE 'exp%' AND tags.team = 'a'") == And(
        (c("attribute", "name", "LIKE", "exp%"), c("tag", "team", "=", "a"))
    )
    assert parse_experiment_filter("attributes.name != 'x'") == c("attribute", "name", "!=", "x")
    assert parse_experiment_filter("experiment_id IN ('1', 2)") == c("attribute", "experiment_id", "IN", ("1", "2"))
    assert parse_experiment_filter("experiment_id = 7") == c("attribute", "experiment_id", "=", "7")
    assert parse_experiment_filter("creation_time > 5 OR last_update_time <= 6") == Or(
        (c("attribute", "creation_time", ">", 5), c("attribute", "last_update_time", "<=", 6))
    )
    assert parse_experiment_filter("tag.k IS NULL") == c("tag", "k", "IS NULL")
    assert parse_experiment_filter("name NOT IN ('a', 'b')") == c("attribute", "name", "NOT IN", ("a", "b"))


@pytest.mark.parametrize(
    ("text", "token"),
    [
        ("metrics.acc > 1", "metrics"),
        ("params.p = 'x'", "params"),
        ("datasets.name = 'x'", "datasets"),
        ("run.name = 'x'", "'run'"),
        ("status = 'x'", "status"),
        ("run_id = 'x'", "run_id"),
        ("creation_time = 'x'", "'x'"),
        ("name > 'x'", "'>'"),
        ("name IS NULL", "'IS NULL'"),
    ],
)
def test_invalid_experiment_filters(text: str, token: str) -> None:
    assert token in invalid(parse_experiment_filter, text)


# -- errors --------------------------------------------------------------------------------------------------------


def test_error_message_format() -> None:
    assert invalid(parse_run_filter, "metrics.acc >") == (
        "Invalid filter string 'metrics.acc >': expected a number for metrics key 'acc' after '>' at position 12"
    )


@pytest.mark.parametrize(
    ("text", "token", "position"),
    [
        ("metrics.acc >", "'>'", 12),
        ("metrics.acc > 'x'", "''x''", 14),
        ("metrics.acc > nan", "'nan'", 14),
        ("metrics.acc > inf", "'inf'", 14),
        ("metrics.acc LIKE '1'", "'LIKE'", 12),
        ("metrics.acc IS NULL", "'IS NULL'", 12),
        ("metrics.acc IN (1, 2)", "'IN'", 12),
        ("params.p > 'x'", "'>'", 9),
        ("params.p = x", "'x'", 11),
        ("params.p = 1", "'1'", 11),
        ("tags.t < 'x'", "'<'", 7),
        ("status = FINISHED", "'FINISHED'", 9),
        ("status > 'A'", "'>'", 7),
        ("status IS NULL", "'IS NULL'", 7),
        ("start_time = 'x'", "''x''", 13),
        ("start_time LIKE '1%'", "'LIKE'", 11),
        ("start_time IN (1)", "'IN'", 11),
        ("datasets.name > 'x'", "'>'", 14),
        ("datasets.size = 'x'", "'size'", 9),
        ("foo = 'x'", "'foo'", 0),
        ("acc > 0.5", "'acc'", 0),
        ("metricz.acc > 1", "'metricz'", 0),
        ("attributes.nope = 'x'", "'nope'", 11),
        ("params. = 'x'", "'params.'", 6),
        ("params.p = 'abc", "'abc", 11),
        ("tags.`oops = 'x'", "`oops", 5),
        ("params.p 'x'", "''x''", 9),
        ("params.p == 'x'", "'=='", 9),
        ("params.p <> 'x'", "'<>'", 9),
        ("params.p NOT LIKE 'x'", "'LIKE'", 13),
        ("params.p IS 'x'", "''x''", 12),
        ("params.p IS NOT 'x'", "''x''", 16),
        ("params.p IN 'x'", "''x''", 12),
        ("params.p IN ()", "')'", 13),
        ("params.p IN ('a',)", "')'", 17),
        ("params.p IN ('a' 'b')", "''b''", 17),
        ("params.p IN ('a'", "''a''", 13),
        (r"params.p LIKE 'a\'", "'a\\'", 14),
        ("params.p = 'a' AND", "'AND'", 15),
        ("params.p = 'a' OR OR params.q = 'b'", "'OR'", 18),
        ("params.p = 'a' params.q = 'b'", "'params.q'", 15),
        ("(params.p = 'a'", "'('", 0),
        ("params.p = 'a')", "')'", 14),
        ("()", "')'", 1),
        ("NOT", "'NOT'", 0),
        ("AND params.p = 'a'", "'AND'", 0),
        ("params.p = 'a' ; DROP TABLE runs", "';'", 15),
        ("metrics.acc > 1abc", "'1abc'", 14),
        ("metrics.acc > 1.2.3", "'1.2.", 14),
        ("metrics.acc > - 1", "'-'", 14),
        ("params.p = 'a\x00'", "NUL", 13),
        ("'x' = 'y'", "'x'", 0),
    ],
)
def test_invalid_run_filters(text: str, token: str, position: int) -> None:
    message = invalid(parse_run_filter, text)
    assert message.startswith(f"Invalid filter string '{text}': ")
    assert token in message.removeprefix(f"Invalid filter string '{text}': ")
    assert message.endswith(f" at position {position}")


def test_non_string_filter_is_rejected() -> None:
    assert "expected a string" in invalid(parse_run_filter, 42)


# -- order by ------------------------------------------------------------------------------------------------------

START_DESC = OrderKey(attr("start_time"), ascending=False)
RUN_ID_ASC = OrderKey(attr("run_id"))


def test_run_order_by_defaults_and_tie_breakers() -> None:
    assert parse_run_order_by(None) == [START_DESC, RUN_ID_ASC]
    assert parse_run_order_by([]) == [START_DESC, RUN_ID_ASC]
    assert parse_run_order_by(["metrics.acc DESC"]) == [
        OrderKey(Identifier("metric", "acc"), ascending=False),
        START_DESC,
        RUN_ID_ASC,
    ]
    assert parse_run_order_by(["start_time ASC"]) == [OrderKey(attr("start_time")), RUN_ID_ASC]
    assert parse_run_order_by(["created"]) == [OrderKey(attr("start_time")), RUN_ID_ASC]
    assert parse_run_order_by(["run_id desc", "params.p"]) == [
        OrderKey(attr("run_id"), ascending=False),
        OrderKey(Identifier("param", "p")),
        START_DESC,
    ]


@pytest.mark.parametrize(
    ("clause", "key"),
    [
        ("metrics.acc", OrderKey(Identifier("metric", "acc"))),
        ("metric.acc asc", OrderKey(Identifier("metric", "acc"))),
        ("metrics.loss.min DESC", OrderKey(Identifier("metric", "loss", "min"), ascending=False)),
        ("metrics.`loss.max`", OrderKey(Identifier("metric", "loss.max"))),
        ("params.`my param` Desc", OrderKey(Identifier("param", "my param"), ascending=False)),
        ("tags.mlflow.runName", OrderKey(Identifier("tag", "mlflow.runName"))),
        ("attributes.status", OrderKey(attr("status"))),
        ("`Run Name` DESC", OrderKey(attr("run_name"), ascending=False)),
        ("end_time", OrderKey(attr("end_time"))),
    ],
)
def test_run_order_by_clauses(clause: str, key: OrderKey) -> None:
    assert parse_run_order_by([clause])[0] == key


def test_experiment_order_by() -> None:
    creation_desc = OrderKey(attr("creation_time"), ascending=False)
    experiment_id_asc = OrderKey(attr("experiment_id"))
    assert parse_experiment_order_by(None) == [creation_desc, experiment_id_asc]
    assert parse_experiment_order_by(["name DESC"]) == [
        OrderKey(attr("name"), ascending=False),
        creation_desc,
        experiment_id_asc,
    ]
    assert parse_experiment_order_by(["creation_time", "last_update_time DESC"]) == [
        OrderKey(attr("creation_time")),
        OrderKey(attr("last_update_time"), ascending=False),
        experiment_id_asc,
    ]
    assert parse_experiment_order_by(["experiment_id DESC"]) == [
        OrderKey(attr("experiment_id"), ascending=False),
        creation_desc,
    ]


@pytest.mark.parametrize(
    ("clauses", "token"),
    [
        (["metrics.acc", "metric.acc DESC"], "'metrics.acc'"),
        (["created", "start_time DESC"], "'created'"),
        ([""], "''"),
        (["   "], "'   '"),
        (["metrics.acc DESCENDING"], "'DESCENDING'"),
        (["metrics.acc DESC ASC"], "'ASC'"),
        (["foo"], "'foo'"),
        (["datasets.name"], "datasets"),
        (["metrics.acc, params.p"], "','"),
        (["ASC"], "'ASC'"),
        (["metrics.`acc"], "`acc"),
    ],
)
def test_invalid_run_order_by(clauses: list[str], token: str) -> None:
    message = invalid(parse_run_order_by, clauses)
    assert message.startswith("Invalid order_by clause")
    assert token in message


def test_invalid_experiment_order_by() -> None:
    assert "metrics" in invalid(parse_experiment_order_by, ["metrics.acc"])
    assert "'start_time'" in invalid(parse_experiment_order_by, ["start_time"])
    assert "'name'" in invalid(parse_experiment_order_by, ["name", "attributes.name DESC"])


def test_order_by_error_names_position() -> None:
    message = invalid(parse_run_order_by, ["metrics.acc sideways"])
    assert re.search(r"'sideways' at position 12$", message)
