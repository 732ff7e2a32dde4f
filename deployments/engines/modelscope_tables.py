"""SPACE-T's table files: what modelscope's space_T_cn `Database` reads, written from a database's tables.

`table.json` holds one JSON object per line and table: its id and name, each column's name, id, type
(text, number, date), unit and attribute (PRIMARY or empty), and the rows, every cell as text. `synonym.txt`
holds column-name synonyms (`name|name\\tsynonym|synonym` per line): the model's own list when it ships one.
Files are written once per content key, into a directory of their own, and renamed into place whole.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from text2sql.table_qa import QaTable, QaTables

TABLE_FILE = "table.json"
SYNONYM_FILE = "synonym.txt"


def table_record(table: QaTable) -> dict:
    names = [c.name for c in table.columns]
    return {
        "table_id": table.name,
        "table_name": table.name,
        "header_name": names,
        "header_id": names,
        "header_types": [c.kind for c in table.columns],
        # No units: an empty one adds no tokens to the column's name.
        "header_units": ["" for _ in table.columns],
        "header_attribute": ["PRIMARY" if c.primary_key else "" for c in table.columns],
        "rows": [["" if cell is None else str(cell) for cell in row] for row in table.rows],
    }


def write_table_files(tables: QaTables, root: Path, *, synonyms: Path | None = None) -> Path:
    """The directory holding `tables` as SPACE-T's files, under `root/<tables.key>`; written when missing."""
    directory = root / tables.key
    if (directory / TABLE_FILE).is_file():
        return directory
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{tables.key}-", dir=root))
    try:
        with open(staging / TABLE_FILE, "w", encoding="utf-8") as out:
            for table in tables.tables:
                out.write(json.dumps(table_record(table), ensure_ascii=False) + "\n")
        if synonyms is not None and synonyms.is_file():
            shutil.copyfile(synonyms, staging / SYNONYM_FILE)
        else:
            (staging / SYNONYM_FILE).write_text("", encoding="utf-8")
        try:
            os.rename(staging, directory)
        except OSError:
            if not (directory / TABLE_FILE).is_file():  # another replica won the race: its files are the same
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return directory


def table_qa_preprocessor(tables: QaTables, root: Path, *, model_dir: Path, tokenizer: Any) -> tuple[Any, Any]:
    """(database, preprocessor) of ModelScope's table-QA pipeline over `tables`, their files written under `root`:
    what the SPACE-T engine answers with and what its fine-tuning encodes examples with."""
    from modelscope.preprocessors import TableQuestionAnsweringPreprocessor
    from modelscope.preprocessors.nlp.space_T_cn.fields.database import Database

    directory = write_table_files(tables, root, synonyms=model_dir / SYNONYM_FILE)
    database = Database(
        tokenizer=tokenizer,
        table_file_path=str(directory / TABLE_FILE),
        syn_dict_file_path=str(directory / SYNONYM_FILE),
        is_use_sqlite=False,
    )
    return database, TableQuestionAnsweringPreprocessor(str(model_dir), db=database, device="cpu")
