"""Turn a request's schema input (DDL, JSON, or a database name) into what the pipeline needs.

Named databases are introspected live and cached per database with its own TTL; the admin
endpoint refreshes them. This runs in the ingress, so one cache serves every model deployment.
"""

from __future__ import annotations

import logging
import threading
import time

from deployments.databases import DatabaseConfig, DatabaseConfigError
from deployments.errors import DatabaseUnavailable, UnknownDatabase
from deployments.protocol.sql import SqlGenerateRequest
from text2sql.dialects import DEFAULT_DIALECT
from text2sql.examples import ExamplePair, ExampleStoreError, example_index
from text2sql.pipeline.inputs import SchemaContext
from text2sql.pipeline.settings import PipelineSettings
from text2sql.schema import DatabaseSchema
from text2sql.schema.cache import SchemaCache
from text2sql.schema.ddl import parse_ddl
from text2sql.schema.errors import SchemaError
from text2sql.schema.inferred_keys import InferredKey, infer_keys
from text2sql.schema.introspect import introspect
from text2sql.schema.relationships import with_join_keys, with_relationships
from text2sql.schema.values import ValueIndex, build_value_index

logger = logging.getLogger(__name__)


class SchemaResolver:
    def __init__(self, databases: dict[str, DatabaseConfig], pipeline: PipelineSettings | None = None) -> None:
        self._databases = databases
        self._pipeline = pipeline or PipelineSettings()
        # database -> (the schema it was built from, its value index): rebuilt when the schema is reloaded.
        self._value_indexes: dict[str, tuple[DatabaseSchema, ValueIndex]] = {}
        self._value_lock = threading.Lock()
        # database -> (its tables and columns, the join keys read from its data): a reload that finds the same tables
        # and columns reuses the keys rather than scanning the data again every schema_ttl_s.
        self._inferred: dict[str, tuple[tuple, list[InferredKey]]] = {}
        self._caches = {
            name: SchemaCache(self._loader(name, config), ttl_s=config.schema_ttl_s)
            for name, config in databases.items()
        }

    def _loader(self, name: str, config: DatabaseConfig):
        def load(_name: str) -> DatabaseSchema:
            url = config.resolve_url()
            schema = introspect(url, sample_values=config.sample_values, include_tables=config.include_tables)
            tables, qualifiers = list(schema.tables), list(schema.qualifiers)
            for extra in config.expose_schemas:
                # Named as the query must name them, `schema.table`: validation finds them by that name.
                exposed = introspect(url, sample_values=config.sample_values, schema_name=extra)
                tables += [t.model_copy(update={"name": f"{extra}.{t.name}"}) for t in exposed.tables]
                qualifiers.append(extra)
            schema = schema.model_copy(update={"name": name, "tables": tables, "qualifiers": qualifiers})
            schema = with_relationships(schema, config.relationships)
            if config.infer_relationships and not any(table.foreign_keys for table in schema.tables):
                keys = self._keys_from_data(name, url, schema, config)
                schema = with_join_keys(schema, [(*k.as_tuple(), k.relationship()) for k in keys])
            return schema

        return load

    def _keys_from_data(self, name: str, url: str, schema: DatabaseSchema, config: DatabaseConfig) -> list[InferredKey]:
        shape = tuple((t.name, tuple((c.name, c.type) for c in t.columns)) for t in schema.tables)
        cached = self._inferred.get(name)
        if cached is not None and cached[0] == shape:
            return cached[1]
        keys = infer_keys(url, schema, config.dialect(), timeout_s=config.timeout_s)
        logger.info("%s declares no foreign keys; read %d from its data: %s", name, len(keys),
                    ", ".join(k.relationship() for k in keys) or "none")
        self._inferred[name] = (shape, keys)
        return keys

    @property
    def names(self) -> list[str]:
        return sorted(self._databases)

    def config(self, name: str) -> DatabaseConfig:
        try:
            return self._databases[name]
        except KeyError:
            available = ", ".join(self.names) or "none are configured"
            raise UnknownDatabase(f"database {name!r} does not exist; available databases: {available}", param="database") from None

    def schema(self, name: str) -> DatabaseSchema:
        self.config(name)
        try:
            return self._caches[name].get(name)
        except (SchemaError, DatabaseConfigError) as e:
            logger.warning("introspecting %s failed: %s", name, e)
            raise DatabaseUnavailable(f"database {name!r} cannot be read right now: {e}", headers={"Retry-After": "10"}) from e

    def refresh(self, name: str | None = None) -> list[str]:
        names = [name] if name is not None else self.names
        for each in names:
            self.config(each)
            self._caches[each].refresh(each)
        return names

    def resolve(self, request: SqlGenerateRequest) -> SchemaContext:
        """The schema the question is answered against and, when it is to run, where: the model side never reads
        the database config again. With examples on, the question/SQL pairs most like the question."""
        context = self._resolve_schema(request)
        extra = {"examples": self.examples(request), "value_matches": self.value_matches(request, context)}
        extra = {key: value for key, value in extra.items() if value}
        return context.model_copy(update=extra) if extra else context

    def value_matches(self, request: SqlGenerateRequest, context: SchemaContext) -> list[str]:
        linking = request.value_linking if request.value_linking is not None else self._pipeline.value_linking
        if not linking or request.database is None or context.schema_ is None:
            return []
        return [match.render() for match in self.value_index(request.database, context.schema_).matches(request.question)]

    def value_index(self, name: str, schema: DatabaseSchema) -> ValueIndex:
        """Built on first use and whenever the schema was reloaded; one build at a time."""
        with self._value_lock:
            cached = self._value_indexes.get(name)
            if cached is not None and cached[0] is schema:
                return cached[1]
            config = self.config(name)
            started = time.perf_counter()
            index = build_value_index(
                config.resolve_url(), schema, config.dialect(), max_per_column=config.value_index_max_per_column,
                timeout_s=config.timeout_s,
            )
            logger.info("value index of %s: %d values in %.0f ms", name, len(index), (time.perf_counter() - started) * 1000)
            self._value_indexes[name] = (schema, index)
            return index

    def examples(self, request: SqlGenerateRequest) -> list[ExamplePair]:
        count = request.examples if request.examples is not None else self._pipeline.examples
        store = self._pipeline.example_store
        if request.database is not None:
            store = self.config(request.database).examples or store
        if not count or store is None:
            return []
        try:
            return example_index(store).nearest(request.question, count)
        except ExampleStoreError as e:
            # The answer does not depend on examples; a broken store must not fail the question.
            logger.warning("examples skipped: %s", e)
            return []

    def _resolve_schema(self, request: SqlGenerateRequest) -> SchemaContext:
        started = time.perf_counter()
        if request.database is not None:
            schema = self.schema(request.database)
            config = self.config(request.database)
            database_dialect = config.dialect()
            return SchemaContext(
                schema_=schema,
                dialect=request.dialect or database_dialect,
                database=request.database,
                database_dialect=database_dialect,
                target=config.execution_target(max_rows=request.max_rows) if request.execute else None,
                source=config.execution_target(),
                schema_ms=(time.perf_counter() - started) * 1000,
            )
        dialect = request.dialect or DEFAULT_DIALECT
        if isinstance(request.schema_, DatabaseSchema):
            return SchemaContext(schema_=request.schema_, dialect=dialect)
        if request.schema_ is None or not request.schema_.strip():
            return SchemaContext(dialect=dialect)
        try:
            parsed = parse_ddl(request.schema_, dialect=request.dialect)
        except SchemaError as e:
            # Not DDL we can read: still useful to the model, but identifiers cannot be checked.
            logger.info("schema text is not parseable DDL (%s); passing it through", e)
            return SchemaContext(raw_text=request.schema_, dialect=dialect)
        return SchemaContext(schema_=parsed, dialect=dialect, schema_ms=(time.perf_counter() - started) * 1000)
