"""The interface of an engine that answers over tables (SPACE-T) instead of writing text.

Such an engine declares `capabilities.table_qa`; callers then give it the question, the tables and the previous
turn's structured query, and get a structured query back. It still is an `Engine` (start, health, capabilities);
its generate() and stream() raise GenerationNotSupported.
"""

from __future__ import annotations

from abc import abstractmethod

from pydantic import Field, PositiveFloat, PositiveInt

from text2sql.pipeline.engine import Engine, EngineError
from text2sql.strict import StrictModel
from text2sql.table_qa.query import StructuredQuery
from text2sql.table_qa.tables import QaTables


class GenerationNotSupported(EngineError):
    """The engine writes no free text: chat and completion requests are the client's to fix (400)."""


class TablesTooWide(EngineError):
    """The question and the chosen table's columns do not fit the model's input: the client's to fix (400)."""


class TableExportPolicy(StrictModel):
    """How much of a database the engine wants to see, and how long an export of it stays fresh."""

    max_rows_per_table: PositiveInt = Field(description="Rows read from each table for value linking.")
    refresh_s: PositiveFloat = Field(description="Seconds before a database's rows are read again.")


class TableQaAnswer(StrictModel):
    query: StructuredQuery = Field(description="The answer as a structured query over one table.")
    model_sql: str = Field(description="The model's own SQL text for it, as it writes it.")
    history_used: bool = Field(description="Whether a previous turn's query was given to the model.")


class TableQaEngine(Engine):
    @property
    @abstractmethod
    def export_policy(self) -> TableExportPolicy:
        """How many rows to export per table, and how often."""

    @abstractmethod
    async def prepare(self, tables: QaTables) -> None:
        """Index `tables` ahead of the first question on them (warm start)."""

    @abstractmethod
    async def answer(self, question: str, tables: QaTables, previous: StructuredQuery | None) -> TableQaAnswer:
        """Answer `question` over `tables`, following up on `previous` (the last turn's query) when given."""
