"""SPACE-T engine (`backend: modelscope_tableqa`): ModelScope's table-question-answering pipeline, on CPU.

The product guide's model is `damo/nlp_convai_text2sql_pretrain_cn`: a BERT-style encoder over the question,
the previous turn's query and one table's columns, with heads that pick the table's columns, aggregations,
conditions and a multi-turn action. It writes no free text, so generate() and stream() refuse; the model
server sends /v1/sql/generate through `answer()` instead (`capabilities.table_qa`).

A model directory holds `configuration.json` (ModelScope's config, with the encoder's sizes),
`pytorch_model.bin` (`backbone_model` and `head_model` state dicts) and `vocab.txt`. The tables come with each
request: they are written once per content key as SPACE-T's table files (`modelscope_tables.py`) and indexed
by modelscope's `Database` (tokenized column names, a trie of each text column's values); the last few
indexes stay in memory. Its in-memory SQLite copy is off: the answer runs on the real database, read-only.

modelscope and torch are imported in `start()`, so this module imports where only llama.cpp is installed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deployments.engines.modelscope_tables import table_qa_preprocessor
from deployments.engines.settings import ModelScopeTableQaSettings
from text2sql.pipeline.engine import (
    EngineCapabilities,
    EngineError,
    GenerationChunk,
    GenerationOutput,
    GenerationRequest,
)
from text2sql.table_qa import (
    GenerationNotSupported,
    QaTables,
    StructuredQuery,
    TableExportPolicy,
    TableQaAnswer,
    TableQaEngine,
    TablesTooWide,
)

if TYPE_CHECKING:
    from deployments.config import ModelConfig

logger = logging.getLogger(__name__)

# SPACE-T's encoder takes at most this many tokens (its position embeddings).
_DEFAULT_CONTEXT = 512


def build(config: ModelConfig, model_path: Path) -> ModelScopeTableQaEngine:
    """The engine for a `backend: modelscope_tableqa` model (the registry's entry point)."""
    settings = config.engine
    return ModelScopeTableQaEngine(
        model_path,
        settings,
        # Threads follow the CPUs Ray reserved for the replica, so replicas do not fight over cores.
        num_threads=settings.num_threads or max(1, int(config.ray_actor_options.num_cpus)),
        cache_dir=Path(settings.tables_cache_dir).expanduser() if settings.tables_cache_dir else None,
    )


def tables_cache_dir() -> Path:
    from deployments.embedded_models import model_cache_dir

    return model_cache_dir() / "spacet-tables"


class ModelScopeTableQaEngine(TableQaEngine):
    def __init__(
        self,
        model_path: Path,
        settings: ModelScopeTableQaSettings | None = None,
        *,
        num_threads: int | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        self._model_dir = model_path
        self._settings = settings or ModelScopeTableQaSettings()
        self._num_threads = num_threads or self._settings.num_threads
        self._cache_dir = cache_dir or tables_cache_dir()
        self._model: Any = None
        self._tokenizer: Any = None
        self._context_length = _DEFAULT_CONTEXT
        # content key -> pipeline bound to that content's Database, least recently used first
        self._pipelines: OrderedDict[str, Any] = OrderedDict()
        # Held by the worker thread itself: a cancelled request cannot let a second thread into the model.
        self._lock = threading.Lock()

    @property
    def capabilities(self) -> EngineCapabilities:
        return EngineCapabilities(context_length=self._context_length, table_qa=True, max_concurrent_requests=1)

    @property
    def export_policy(self) -> TableExportPolicy:
        return TableExportPolicy(
            max_rows_per_table=self._settings.max_rows_per_table, refresh_s=self._settings.table_refresh_s
        )

    async def start(self) -> None:
        try:
            import modelscope  # noqa: F401
            import torch  # noqa: F401
        except ImportError as e:
            raise EngineError(
                "backend modelscope_tableqa needs modelscope and torch: pip install 'text2sql-serve[modelscope]'"
            ) from e
        if not (self._model_dir / "configuration.json").is_file():
            raise EngineError(
                f"{self._model_dir.name!r} is not a ModelScope model directory (no configuration.json); point "
                "'source' at the downloaded damo/nlp_convai_text2sql_pretrain_cn or use its modelscope: id"
            )
        await asyncio.to_thread(self._load)
        logger.info("SPACE-T model loaded from %s", self._model_dir)

    def _load(self) -> None:
        import torch
        from modelscope.models import Model
        from transformers import BertTokenizer

        if self._num_threads:
            torch.set_num_threads(self._num_threads)
        self._model = Model.from_pretrained(str(self._model_dir), device="cpu")
        self._tokenizer = BertTokenizer(str(self._model_dir / "vocab.txt"))
        config = json.loads((self._model_dir / "configuration.json").read_text(encoding="utf-8"))
        self._context_length = int(config.get("max_position_embeddings") or _DEFAULT_CONTEXT)

    async def check_health(self) -> None:
        if self._model is None:
            raise EngineError("the SPACE-T model is not loaded")

    async def generate(self, request: GenerationRequest) -> GenerationOutput:
        raise GenerationNotSupported(_NO_TEXT)

    async def stream(self, request: GenerationRequest) -> AsyncIterator[GenerationChunk]:
        raise GenerationNotSupported(_NO_TEXT)
        yield  # pragma: no cover - makes this an async generator

    async def prepare(self, tables: QaTables) -> None:
        if self._model is None:
            raise EngineError("the SPACE-T model is not loaded")

        def index() -> None:
            with self._lock:
                self._pipeline_for(tables)

        await asyncio.to_thread(index)

    async def answer(self, question: str, tables: QaTables, previous: StructuredQuery | None) -> TableQaAnswer:
        if self._model is None:
            raise EngineError("the SPACE-T model is not loaded")
        return await asyncio.to_thread(self._answer, question, tables, previous)

    def _answer(self, question: str, tables: QaTables, previous: StructuredQuery | None) -> TableQaAnswer:
        from modelscope.outputs import OutputKeys

        with self._lock:
            pipeline = self._pipeline_for(tables)
            try:
                output = self._run(pipeline, question, previous)
            except _POST_PROCESSING_ERRORS as e:
                if previous is None:
                    raise EngineError(f"SPACE-T could not turn its prediction into a query ({type(e).__name__}: {e})") from e
                # Its follow-up merge mixes column indices of two tables when the question links to another table
                # than the previous turn's; the follow-up is then answered over the previous turn's table.
                logger.info("SPACE-T follow-up over another table failed (%r); asking over %s", e, previous.table)
                try:
                    output = self._run(pipeline, question, previous, table=previous.table)
                except _POST_PROCESSING_ERRORS as again:
                    raise EngineError(
                        f"SPACE-T could not turn its prediction into a query ({type(again).__name__}: {again})"
                    ) from again
        return TableQaAnswer(
            query=StructuredQuery.from_spacet(output[OutputKeys.HISTORY]),
            model_sql=str(output[OutputKeys.SQL_QUERY]),
            history_used=previous is not None,
        )

    def _run(self, pipeline: Any, question: str, previous: StructuredQuery | None, *, table: str | None = None) -> dict:
        from modelscope.outputs import OutputKeys

        inputs: dict[str, Any] = {"question": question, "history_sql": previous.to_spacet() if previous else None}
        if table is not None:
            inputs["table_id"] = table  # schema linking looks at this table alone
        try:
            return pipeline(inputs)[OutputKeys.OUTPUT]
        except AssertionError as e:  # its one check: the input must fit the encoder
            raise TablesTooWide(
                f"the question and the columns of the table it is about exceed SPACE-T's {self._context_length} "
                "input tokens; ask about a table with fewer columns"
            ) from e

    def _pipeline_for(self, tables: QaTables) -> Any:
        pipeline = self._pipelines.get(tables.key)
        if pipeline is not None:
            self._pipelines.move_to_end(tables.key)
            return pipeline
        from modelscope.pipelines import pipeline as make_pipeline
        from modelscope.utils.constant import Tasks

        database, preprocessor = table_qa_preprocessor(
            tables, self._cache_dir, model_dir=self._model_dir, tokenizer=self._tokenizer
        )
        pipeline = make_pipeline(
            Tasks.table_question_answering, model=self._model, preprocessor=preprocessor, db=database, device="cpu"
        )
        self._pipelines[tables.key] = pipeline
        while len(self._pipelines) > self._settings.max_cached_databases:
            self._pipelines.popitem(last=False)
        return pipeline


# What SPACE-T's post-processing raises on a prediction it cannot turn into a query.
_POST_PROCESSING_ERRORS = (KeyError, IndexError, TypeError, ValueError)

_NO_TEXT = (
    "this model is SPACE-T, a table question-answering model: it writes no free text, so it has no chat or "
    "completion API. Ask it through POST /v1/sql/generate with a question and a database."
)
