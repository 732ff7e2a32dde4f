"""The pure-Python GBNF recognizer the vLLM engine checks constrained output with (deployments/engines/gbnf.py).

It must agree with llama.cpp's own grammar sampler (tests/unit/gbnf_recognizer.py) on the project's SQL
grammars, whole texts and prefixes alike, and read the GBNF constructs other grammars use.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from deployments.engines.gbnf import GbnfSyntaxError, Grammar, parsed_grammar
from deployments.engines.vllm import portable_grammar
from tests.unit.test_grammar import INVALID_SQLITE, VALID_SQLITE, lowercase_schema, shop_schema
from text2sql.grammar import build_sql_grammar

if TYPE_CHECKING:
    from tests.unit.gbnf_recognizer import GrammarMatcher

POSTGRES = [
    "SELECT name FROM customers WHERE created_at::date > CURRENT_DATE - INTERVAL '7 days'",
    "SELECT EXTRACT(YEAR FROM created_at), COUNT(*) FROM customers GROUP BY 1",
    "SELECT \"Region\" FROM customers WHERE name ILIKE 'a%' ORDER BY id NULLS FIRST",
    "SELECT Region FROM customers",
    "SELECT name FROM customers LIMIT 5, 10",
    "SELECT x_1.name FROM customers x_1",
]


@pytest.fixture(scope="module")
def llama_cpp_matcher() -> Iterator[GrammarMatcher]:
    pytest.importorskip("llama_cpp")
    from deployments.embedded_models import EmbeddedModelError, ensure_embedded_model
    from tests.unit.gbnf_recognizer import GrammarMatcher

    try:
        yield GrammarMatcher(ensure_embedded_model("qwen2.5-coder-0.5b", progress=False))
    except EmbeddedModelError as e:
        pytest.skip(f"embedded model not available: {e}")


@pytest.mark.parametrize("sql", VALID_SQLITE)
def test_accepts_what_llama_cpp_accepts(sql: str) -> None:
    assert Grammar(build_sql_grammar(shop_schema(), dialect="sqlite")).matches(sql)


@pytest.mark.parametrize("sql", INVALID_SQLITE.values(), ids=INVALID_SQLITE.keys())
def test_rejects_what_llama_cpp_rejects(sql: str) -> None:
    assert not parsed_grammar(build_sql_grammar(shop_schema(), dialect="sqlite")).matches(sql)


@pytest.mark.parametrize(
    ("dialect", "schema", "texts"),
    [
        ("sqlite", shop_schema, [*VALID_SQLITE[:12], *list(INVALID_SQLITE.values())[:12]]),
        ("postgres", lowercase_schema, POSTGRES),
        ("mysql", shop_schema, ["SELECT od.`Unit Price` AS `Price`, YEAR(OrderDate) FROM `Order Details` AS od"]),
    ],
)
def test_agrees_with_llama_cpp_on_every_prefix(
    llama_cpp_matcher: GrammarMatcher, dialect: str, schema, texts: list[str]
) -> None:
    grammar_text = build_sql_grammar(schema(), dialect=dialect)
    ours = [parsed_grammar(grammar_text), Grammar(portable_grammar(grammar_text))]  # what vLLM is sent, too
    for text in texts:
        for cut in sorted({*range(0, len(text), 3), len(text)}):
            prefix = text[:cut]
            theirs = llama_cpp_matcher.match(grammar_text, prefix)
            for grammar in ours:
                recognition = grammar.recognize(prefix)
                assert recognition.complete == theirs.accepted, prefix
                assert recognition.viable_prefix == (theirs.matched == prefix), prefix


@pytest.mark.parametrize(
    ("grammar", "accepted", "rejected"),
    [
        ('root ::= "a" [0-9]{2} "b"', ["a12b"], ["a1b", "a123b"]),
        ('root ::= "a"{2,} "b"?', ["aa", "aaab"], ["a", "ab"]),
        ('root ::= [xy]{1,3}', ["x", "xyx"], ["", "xyxy"]),
        ('root ::= ("ab" | "c")+ ";"', ["ab;", "cabc;"], [";", "abab"]),
        ("root ::= [^a-c\\n]* .", ["zzz\n", "a"], ["bza", "z\nz"]),
        ('root ::= "\\"" "\\\\" "\\x41" "\\u00e9" "\\t"', ['"\\Aé\t'], ['"\\x41é\t']),
        ("root ::= [\\x5Fa-c]+", ["_a", "cb_"], ["\u05fa", "d"]),
        ('root ::= "" "x" ""', ["x"], [""]),
    ],
)
def test_reads_the_gbnf_constructs(grammar: str, accepted: list[str], rejected: list[str]) -> None:
    parsed = Grammar(grammar)
    assert [parsed.matches(t) for t in accepted] == [True] * len(accepted)
    assert [parsed.matches(t) for t in rejected] == [False] * len(rejected)


def test_rules_span_lines_inside_groups_and_after_bars_with_comments() -> None:
    grammar = Grammar(
        """
        # a comment line
        root ::= greeting ws (
            "world" |   # a comment inside a group
            "there"
        )
        greeting ::= "hello" |
            "hi"
        ws ::= " "*
        """
    )
    assert grammar.matches("hello world") and grammar.matches("hi  there") and grammar.matches("hithere")
    assert not grammar.matches("hello")


def test_prefixes_are_told_from_dead_ends() -> None:
    grammar = Grammar('root ::= "SELECT " name\nname ::= "Artist" | "Album"')
    assert grammar.recognize("SELECT Ar").viable_prefix and not grammar.recognize("SELECT Ar").complete
    assert grammar.recognize("").viable_prefix
    assert not grammar.recognize("SELECT Arx").viable_prefix
    assert grammar.recognize("SELECT Album").complete


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('start ::= "a"', "no 'root' rule"),
        ("root ::= other", "undefined rules: other"),
        ('root ::= "a', "unterminated literal"),
        ("root ::= [a-", "unterminated character class"),
        ('root = "a"', "expected '::='"),
        ('root ::= ("a"', "expected '\\)'"),
        ('root ::= "\\q"', "unknown escape"),
        ('root ::= "a" ) "b"', "end of the rule"),
        ("root ::= *", "repeats nothing"),
    ],
)
def test_broken_grammars_are_errors(text: str, needle: str) -> None:
    with pytest.raises(GbnfSyntaxError, match=needle):
        Grammar(text)
