"""Checked records -> the items ModelScope's TableQuestionAnsweringTrainer trains on.

An item is what ModelScope's own TableQuestionAnsweringPreprocessor makes of the question over the record's
tables (question tokens, schema links, column tokens and types: what the served pipeline makes of it, with its
schema linking held to the target's table), plus the gold labels the trainer reads: `sql` (the target query),
`action` ([its index]) and `wvi_corenlp` (where each condition's value lies among the question's tokens). The
tables are SPACE-T's files written by serving's own writer (`deployments/engines/modelscope_tables.py`) and
indexed by modelscope's `Database`, as the engine does.

Checked here, with the model's tokenizer, and reported as `path:line: what`: each comparison's value is in the
question (SPACE-T points at the words of the question; it cannot produce a value that is not there), and the
input fits the encoder. Needs modelscope (the `[modelscope]` extra).
"""

from __future__ import annotations

import copy
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deployments.engines.modelscope_tables import table_qa_preprocessor
from text2sql.table_qa import QaTables
from text2sql.table_qa.query import ASC, CONDITION_OPS
from training.jsonl import DataError
from training.spacet.config import SpaceTTrainingConfig
from training.spacet.records import MAX_CONDITIONS, MAX_SELECTED, CheckedRecord, load_spacet_records
from training.spacet.tables import TableSource

# ModelScope's own "no condition": the empty column, ==, and this value (its predict() writes the same).
NO_CONDITION_VALUE = "Nulll"
# Its trainer's mark for "no value to point at" in wvi_corenlp.
NO_SPAN = (-100, -100)
# Its encoder input is at most this long (an assertion in get_bert_output).
MAX_INPUT_TOKENS = 512
# Markers around the question and the columns, and one slot per action, length, operator and aggregation
# (modelscope's TableQuestionAnswering.generate_inputs).
_FIXED_TOKENS = 2 + 1 + 3 + MAX_CONDITIONS + 1 + MAX_SELECTED


class _BadValue(ValueError):
    """What is wrong with one record; the builder adds where it came from."""


class ExampleBuilder:
    """One per model directory: a preprocessor (with its table index) per distinct set of tables."""

    def __init__(self, model_dir: Path, tables_dir: Path) -> None:
        from transformers import BertTokenizer

        self._model_dir = model_dir
        self._tables_dir = tables_dir
        self._tokenizer = BertTokenizer(str(model_dir / "vocab.txt"))
        self._preprocessors: dict[str, Any] = {}
        configuration = json.loads((model_dir / "configuration.json").read_text(encoding="utf-8"))
        self._max_tokens = min(MAX_INPUT_TOKENS, int(configuration.get("max_position_embeddings") or MAX_INPUT_TOKENS))

    def items(self, records: list[CheckedRecord]) -> list[dict[str, Any]]:
        """One trainer item per record; `DataError` lists every record that cannot be one."""
        items: list[dict[str, Any]] = []
        problems: list[str] = []
        for record in records:
            try:
                items.append(self._item(record))
            except _BadValue as e:
                problems.append(f"{record.where}: {e}")
        if problems:
            raise DataError(problems)
        return items

    def _item(self, record: CheckedRecord) -> dict[str, Any]:
        preprocessor = self._preprocessor(record.tables)
        history_sql = record.previous.to_spacet() if record.previous else None
        inputs = {"question": record.question, "table_id": record.table.name, "history_sql": history_sql}
        item = preprocessor(inputs)["datas"][0]
        question_tokens: list[str] = item["question_tok"]
        empty = len(record.table.columns)
        conds = [list(cond) for cond in record.query.conds]
        spans = [self._span(preprocessor, question_tokens, cond, record) for cond in record.query.conds]
        if not conds:
            conds, spans = [[empty, 2, NO_CONDITION_VALUE]], [list(NO_SPAN)]
        item["sql"] = {
            "sel": list(record.query.sel), "agg": list(record.query.agg),
            "cond_conn_op": record.query.cond_conn_op, "conds": conds,
        }
        item["action"] = [record.action]
        item["wvi_corenlp"] = spans
        length = _input_length(item, record)
        if length > self._max_tokens:
            raise _BadValue(
                f"the question with table {record.table.name!r} is {length} tokens for SPACE-T's {self._max_tokens}: "
                "shorten the question or give a table with fewer columns"
            )
        return item

    def _span(self, preprocessor: Any, question_tokens: list[str], cond: tuple[int, int, str], record: CheckedRecord) -> list[int]:
        column, op, value = cond
        if column >= len(record.table.columns) or not value.strip():
            return list(NO_SPAN)
        value_tokens = preprocessor.tokenizer.tokenize(value.lower())  # the question is lowercased the same way
        found = preprocessor.schema_linker.allfindpairidx(question_tokens, value_tokens, 1.0) if value_tokens else []
        if found:
            start, end, _ = found[0]
            return [start, end]
        if op >= ASC:  # an ordering's row limit may be implied ("the largest"): nothing to point at
            return list(NO_SPAN)
        name = record.table.columns[column].name
        raise _BadValue(
            f"the condition {name} {CONDITION_OPS[op]} {value!r} has a value that is not in the question "
            f"(as SPACE-T's tokenizer splits it: {' '.join(question_tokens)}); SPACE-T copies values from the question"
        )

    def _preprocessor(self, tables: QaTables) -> Any:
        preprocessor = self._preprocessors.get(tables.key)
        if preprocessor is None:
            _, preprocessor = table_qa_preprocessor(
                tables, self._tables_dir, model_dir=self._model_dir, tokenizer=self._tokenizer
            )
            self._preprocessors[tables.key] = preprocessor
        return preprocessor


def _input_length(item: dict[str, Any], record: CheckedRecord) -> int:
    """At most the encoder input SPACE-T builds for this item: the question, the previous query's columns, one
    slot per column (and the empty one), and the fixed markers and slots."""
    history = 0
    if record.previous is not None:
        history = 3 + len(set(record.previous.sel)) + len({cond[0] for cond in record.previous.conds})
    return _FIXED_TOKENS + len(item["question_tok"]) + history + len(item["header_tok"])


@dataclass(frozen=True)
class Examples:
    train: list[dict[str, Any]]
    held_out: list[dict[str, Any]]  # what ModelScope's trainer scores after every epoch
    scored_on_train: bool  # no held-out records were given: the epochs are scored on the training ones


def load_examples(config: SpaceTTrainingConfig, model_dir: Path, tables_dir: Path) -> Examples:
    """The job's training and held-out items; `DataError` names every bad line of the file it stopped at."""
    source = TableSource(config.data.databases, max_rows_per_table=config.data.max_rows_per_table)
    builder = ExampleBuilder(model_dir, tables_dir)
    if config.data.eval is not None:
        train, held_out = _both(builder, source, config.data.train, config.data.eval)
        return Examples(train, held_out, scored_on_train=False)
    train = builder.items(load_spacet_records(config.data.train, source))
    if config.data.eval_fraction:
        order = list(range(len(train)))
        random.Random(config.optim.seed).shuffle(order)
        count = max(1, round(len(train) * config.data.eval_fraction))
        if count >= len(train):
            raise DataError([f"{config.data.train}: {len(train)} records leave none to train on after holding out {count}"])
        held = set(order[:count])
        return Examples(
            [item for i, item in enumerate(train) if i not in held], [train[i] for i in sorted(held)], scored_on_train=False
        )
    # ModelScope's trainer scores every epoch (and keeps the best one): it needs records to score.
    return Examples(train, copy.deepcopy(train), scored_on_train=True)


def _both(builder: ExampleBuilder, source: TableSource, train: Path, held_out: Path) -> tuple[list, list]:
    """Both files' items; the bad lines of both in one DataError."""
    items: list[list[dict[str, Any]]] = []
    problems: list[str] = []
    for path in (train, held_out):
        try:
            items.append(builder.items(load_spacet_records(path, source)))
        except DataError as e:
            problems += e.problems
    if problems:
        raise DataError(problems)
    return items[0], items[1]
