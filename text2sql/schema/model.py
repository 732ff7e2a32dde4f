"""The schema data model every other part speaks: tables, columns, keys, comments, sample values.

It is also the structured-JSON input format of `/v1/sql/generate` (`schema` as an object).
"""

from __future__ import annotations

from pydantic import Field

from text2sql.strict import StrictModel

SampleValue = str | int | float | bool | None


class Column(StrictModel):
    name: str = Field(description="Column name as the database spells it.", min_length=1)
    type: str = Field(default="", description="Declared type, e.g. INTEGER, VARCHAR(40).")
    primary_key: bool = Field(default=False, description="Part of the table's primary key.")
    nullable: bool = Field(default=True, description="Whether NULL is allowed.")
    comment: str | None = Field(default=None, description="Column description, shown to the model.")
    samples: list[SampleValue] = Field(default_factory=list, description="A few distinct example values.")


class ForeignKey(StrictModel):
    columns: list[str] = Field(description="Referencing columns in this table.", min_length=1)
    ref_table: str = Field(description="Referenced table.")
    ref_columns: list[str] = Field(description="Referenced columns, in the same order.", min_length=1)


class Table(StrictModel):
    name: str = Field(description="Table name as the database spells it.", min_length=1)
    columns: list[Column] = Field(description="Columns in declaration order.", min_length=1)
    foreign_keys: list[ForeignKey] = Field(default_factory=list, description="Outgoing foreign keys.")
    comment: str | None = Field(default=None, description="Table description, shown to the model.")

    def column(self, name: str) -> Column | None:
        """Case-insensitive lookup, as SQL identifiers are usually case-insensitive."""
        lowered = name.lower()
        return next((c for c in self.columns if c.name.lower() == lowered), None)

    def references(self, column: str, table: str, ref_column: str) -> bool:
        """`column` is, alone, a foreign key to `table`.`ref_column` (names compared without case)."""
        return any(
            [c.lower() for c in key.columns] == [column.lower()]
            and key.ref_table.lower() == table.lower()
            and [c.lower() for c in key.ref_columns] == [ref_column.lower()]
            for key in self.foreign_keys
        )

    @property
    def primary_key(self) -> list[str]:
        return [c.name for c in self.columns if c.primary_key]


class DatabaseSchema(StrictModel):
    tables: list[Table] = Field(description="All tables the model may use.", min_length=1)
    name: str | None = Field(default=None, description="Database name, for M-Schema's header.")
    qualifiers: list[str] = Field(
        default_factory=list,
        description="Schema or database names a query may use as a qualifier (the PostgreSQL schema, the "
        "MySQL/MariaDB database, SQLite's 'main'), as the database spells them; empty when unknown.",
    )

    def table(self, name: str) -> Table | None:
        lowered = name.lower()
        return next((t for t in self.tables if t.name.lower() == lowered), None)

    def subset(self, table_names: list[str]) -> DatabaseSchema:
        """The same schema restricted to the named tables, in the schema's own order."""
        wanted = {n.lower() for n in table_names}
        return self.model_copy(update={"tables": [t for t in self.tables if t.name.lower() in wanted]})
