"""A GBNF recognizer in pure Python: is a text in a grammar's language, or at least a prefix of it?

vLLM enforces a grammar through its structured-output backend, and a vLLM build that ignores the
parameter generates free text without a word. The vLLM engine re-checks every constrained output
here, so a constraint that was not applied fails closed instead of passing as if it had been.

It reads llama.cpp's GBNF (what `text2sql.grammar` writes and xgrammar accepts): `name ::= ...` rules,
"literals", [character classes] and [^negated] ones, `.`, ( groups ), alternatives, the postfix
operators * + ? {m} {m,} {m,n}, and # comments; a rule ends at a newline outside parentheses. The
parser is Earley's over characters, with literals scanned whole so that a schema's many identifiers
cost one step each.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Union

_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "[": "[", "]": "]"}
_HEX_ESCAPES = {"x": 2, "u": 4, "U": 8}
_START = "<start>"


class GbnfSyntaxError(ValueError):
    """The grammar text is not GBNF this recognizer reads."""


@dataclass(frozen=True)
class _Chars:
    """One character out of inclusive code-point ranges, or out of everything else when negated."""

    ranges: tuple[tuple[int, int], ...]
    negated: bool = False

    def matches(self, char: str) -> bool:
        code = ord(char)
        return any(low <= code <= high for low, high in self.ranges) != self.negated


@dataclass(frozen=True)
class _Literal:
    text: str


_Symbol = Union[str, _Chars, _Literal]  # noqa: UP007 (a str is a rule name)


@dataclass(frozen=True)
class Recognition:
    """What the parser made of one text."""

    complete: bool  # the whole text is a sentence of the grammar
    viable_prefix: bool  # the text can still be continued into one (true when complete)


class Grammar:
    """A parsed GBNF grammar; `recognize` is safe to call from several threads at once."""

    def __init__(self, text: str, *, root: str = "root") -> None:
        rules = _Parser(text).parse()
        if root not in rules:
            raise GbnfSyntaxError(f"the grammar has no {root!r} rule")
        undefined = sorted(
            {s for alternatives in rules.values() for seq in alternatives for s in seq if isinstance(s, str)}
            - rules.keys()
        )
        if undefined:
            raise GbnfSyntaxError(f"the grammar uses undefined rules: {', '.join(undefined)}")
        rules[_START] = [(root,)]
        self._productions: list[tuple[str, tuple[_Symbol, ...]]] = [
            (name, seq) for name, alternatives in rules.items() for seq in alternatives
        ]
        self._by_name: dict[str, list[int]] = {}
        for index, (name, _) in enumerate(self._productions):
            self._by_name.setdefault(name, []).append(index)
        self._start = self._by_name[_START][0]
        self._nullable = _nullable_rules(self._productions)

    def matches(self, text: str) -> bool:
        return self.recognize(text).complete

    def recognize(self, text: str) -> Recognition:
        productions, by_name, nullable = self._productions, self._by_name, self._nullable
        n = len(text)
        charts: list[list[tuple[int, int, int]]] = [[] for _ in range(n + 1)]
        seen: list[set[tuple[int, int, int]]] = [set() for _ in range(n + 1)]
        # waiting[i][rule]: items of chart i whose next symbol is that rule, advanced when it completes
        waiting: list[dict[str, list[tuple[int, int, int]]]] = [{} for _ in range(n + 1)]
        partial_literal = False

        def add(position: int, item: tuple[int, int, int]) -> None:
            if item not in seen[position]:
                seen[position].add(item)
                charts[position].append(item)

        add(0, (self._start, 0, 0))
        for i in range(n + 1):
            chart, waits, predicted = charts[i], waiting[i], set()
            k = 0
            while k < len(chart):
                production, dot, origin = chart[k]
                k += 1
                name, sequence = productions[production]
                if dot == len(sequence):
                    for p, d, o in waiting[origin].get(name, ()):
                        add(i, (p, d + 1, o))
                    continue
                symbol = sequence[dot]
                if isinstance(symbol, str):
                    waits.setdefault(symbol, []).append((production, dot, origin))
                    if symbol not in predicted:
                        predicted.add(symbol)
                        for p in by_name[symbol]:
                            add(i, (p, 0, i))
                    if symbol in nullable:  # Aycock and Horspool: step over a rule that can be empty
                        add(i, (production, dot + 1, origin))
                elif isinstance(symbol, _Chars):
                    if i < n and symbol.matches(text[i]):
                        add(i + 1, (production, dot + 1, origin))
                elif text.startswith(symbol.text, i):
                    add(i + len(symbol.text), (production, dot + 1, origin))
                elif symbol.text.startswith(text[i:]):
                    partial_literal = True  # the text ends inside this literal
        complete = (self._start, 1, 0) in seen[n]
        return Recognition(complete=complete, viable_prefix=complete or bool(charts[n]) or partial_literal)


@functools.lru_cache(maxsize=32)
def parsed_grammar(text: str) -> Grammar:
    """The parsed grammar, cached: the pipeline sends one grammar text per schema and dialect."""
    return Grammar(text)


def _nullable_rules(productions: list[tuple[str, tuple[_Symbol, ...]]]) -> frozenset[str]:
    nullable: set[str] = set()
    changed = True
    while changed:
        changed = False
        for name, sequence in productions:
            if name not in nullable and all(isinstance(s, str) and s in nullable for s in sequence):
                nullable.add(name)
                changed = True
    return frozenset(nullable)


class _Parser:
    """GBNF text -> {rule: [alternative, ...]}, an alternative being a tuple of symbols.

    Groups and repetitions become generated rules; repetition is left-recursive, which Earley
    parses in linear time.
    """

    def __init__(self, text: str) -> None:
        self._text = text
        self._pos = 0
        self._rules: dict[str, list[tuple[_Symbol, ...]]] = {}
        self._generated = 0

    def parse(self) -> dict[str, list[tuple[_Symbol, ...]]]:
        self._space(newlines=True)
        while self._pos < len(self._text):
            self._rule()
        if not self._rules:
            raise GbnfSyntaxError("the grammar has no rules")
        return self._rules

    def _rule(self) -> None:
        name = self._name()
        self._space(newlines=False)
        if not self._text.startswith("::=", self._pos):
            raise self._error("expected '::='")
        self._pos += 3
        self._space(newlines=True)
        self._rules.setdefault(name, []).extend(self._alternatives(nested=False))
        if self._pos < len(self._text) and self._text[self._pos] not in "\r\n":
            raise self._error("expected the end of the rule")
        self._space(newlines=True)

    def _alternatives(self, *, nested: bool) -> list[tuple[_Symbol, ...]]:
        alternatives = [self._sequence(nested=nested)]
        while self._peek() == "|":
            self._pos += 1
            self._space(newlines=True)
            alternatives.append(self._sequence(nested=nested))
        return alternatives

    def _sequence(self, *, nested: bool) -> tuple[_Symbol, ...]:
        sequence: list[_Symbol] = []
        while self._pos < len(self._text):
            char = self._text[self._pos]
            if char == '"':
                self._pos += 1
                text = []
                while self._peek() != '"':
                    if self._pos >= len(self._text):
                        raise self._error("unterminated literal")
                    text.append(self._char())
                self._pos += 1
                if text:  # "" matches nothing, so it adds no symbol
                    sequence.append(_Literal("".join(text)))
            elif char == "[":
                sequence.append(self._char_class())
            elif char == ".":
                self._pos += 1
                sequence.append(_Chars((), negated=True))
            elif _is_name_char(char):
                sequence.append(self._name())
            elif char == "(":
                self._pos += 1
                self._space(newlines=True)
                group = self._generated_rule(self._alternatives(nested=True))
                if self._peek() != ")":
                    raise self._error("expected ')'")
                self._pos += 1
                sequence.append(group)
            elif char in "*+?{":
                if not sequence:
                    raise self._error(f"{char!r} repeats nothing")
                sequence[-1] = self._repetition(sequence[-1])
            else:
                break
            self._space(newlines=nested)
        return tuple(sequence)

    def _repetition(self, item: _Symbol) -> str:
        operator = self._text[self._pos]
        self._pos += 1
        if operator == "*":
            return self._at_least(item, 0)
        if operator == "+":
            return self._at_least(item, 1)
        if operator == "?":
            return self._generated_rule([(), (item,)])
        low, high = self._bounds()
        if high is None:
            return self._at_least(item, low)
        if high < low:
            raise self._error(f"repetition {{{low},{high}}} has its bounds reversed")
        optional: tuple[_Symbol, ...] = ()
        for _ in range(high - low):  # up to (high - low) more, nested: X (X (X)?)?
            optional = (self._generated_rule([(), (item, *optional)]),)
        return self._generated_rule([(item,) * low + optional])

    def _at_least(self, item: _Symbol, low: int) -> str:
        star = self._generated_rule([()])
        self._rules[star].append((star, item))  # left-recursive: star ::= "" | star item
        return star if low == 0 else self._generated_rule([(item,) * low + (star,)])

    def _bounds(self) -> tuple[int, int | None]:
        close = self._text.find("}", self._pos)
        if close < 0:
            raise self._error("unterminated repetition")
        body = self._text[self._pos : close].replace(" ", "")
        self._pos = close + 1
        low_text, comma, high_text = body.partition(",")
        try:
            low = int(low_text)
            high = (int(high_text) if high_text else None) if comma else low
        except ValueError:
            raise GbnfSyntaxError(f"bad repetition bounds {{{body}}}") from None
        return low, high

    def _char_class(self) -> _Chars:
        self._pos += 1
        negated = self._peek() == "^"
        if negated:
            self._pos += 1
        ranges = []
        while self._peek() != "]":
            if self._pos >= len(self._text):
                raise self._error("unterminated character class")
            low = self._char()
            high = low
            if self._peek() == "-" and self._text[self._pos + 1 : self._pos + 2] not in ("]", ""):
                self._pos += 1
                high = self._char()
            ranges.append((ord(low), ord(high)))
        self._pos += 1
        return _Chars(tuple(ranges), negated=negated)

    def _char(self) -> str:
        char = self._text[self._pos]
        self._pos += 1
        if char != "\\":
            return char
        escape = self._peek()
        self._pos += 1
        if escape in _ESCAPES:
            return _ESCAPES[escape]
        if escape in _HEX_ESCAPES:
            digits = self._text[self._pos : self._pos + _HEX_ESCAPES[escape]]
            self._pos += len(digits)
            try:
                return chr(int(digits, 16))
            except ValueError:
                raise self._error(f"bad escape \\{escape}{digits}") from None
        raise self._error(f"unknown escape \\{escape}")

    def _name(self) -> str:
        start = self._pos
        while self._pos < len(self._text) and _is_name_char(self._text[self._pos]):
            self._pos += 1
        if start == self._pos:
            raise self._error("expected a rule name")
        return self._text[start : self._pos]

    def _space(self, *, newlines: bool) -> None:
        text = self._text
        while self._pos < len(text):
            char = text[self._pos]
            if char in " \t" or (newlines and char in "\r\n"):
                self._pos += 1
            elif char == "#":
                while self._pos < len(text) and text[self._pos] not in "\r\n":
                    self._pos += 1
            else:
                return

    def _generated_rule(self, alternatives: list[tuple[_Symbol, ...]]) -> str:
        self._generated += 1
        name = f"<{self._generated}>"  # angle brackets: no GBNF rule can have this name
        self._rules[name] = alternatives
        return name

    def _peek(self) -> str:
        return self._text[self._pos] if self._pos < len(self._text) else ""

    def _error(self, message: str) -> GbnfSyntaxError:
        line = self._text.count("\n", 0, self._pos) + 1
        return GbnfSyntaxError(f"GBNF line {line}: {message} near {self._text[self._pos : self._pos + 30]!r}")


def _is_name_char(char: str) -> bool:
    return char.isascii() and (char.isalnum() or char in "-_")
