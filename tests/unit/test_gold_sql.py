"""Spider's gold SQL in standard SQL: a double-quoted word that names nothing becomes a string; names stay names."""

from __future__ import annotations

import pytest

from text2sql.schema.ddl import parse_ddl
from training.gold_sql import standard_sql

SCHEMA = parse_ddl(
    "CREATE TABLE Student (StuID INTEGER, Fname TEXT, city_code TEXT);"
    "CREATE TABLE Has_allergy (StuID INTEGER, Allergy TEXT);"
)


@pytest.mark.parametrize(
    ("spider", "standard"),
    [
        ('SELECT Fname FROM Student WHERE city_code  =  "BAL"', "SELECT Fname FROM Student WHERE city_code = 'BAL'"),
        ('SELECT count(*) FROM Has_allergy WHERE Allergy  =  "Cat" OR Allergy = "Milk"',
         "SELECT COUNT(*) FROM Has_allergy WHERE Allergy = 'Cat' OR Allergy = 'Milk'"),
        # a quoted name of a column, a table or an alias stays a name, whatever its case
        ('SELECT "fname" FROM "Student" WHERE "City_Code" = "x"', "SELECT \"fname\" FROM \"Student\" WHERE \"City_Code\" = 'x'"),
        ('SELECT count(*) AS "total" FROM Student ORDER BY "total"', 'SELECT COUNT(*) AS "total" FROM Student ORDER BY "total"'),
        ('SELECT T1.Fname FROM Student AS T1 WHERE T1."Fname" LIKE "%a%"',
         "SELECT T1.Fname FROM Student AS T1 WHERE T1.\"Fname\" LIKE '%a%'"),
    ],
)
def test_double_quoted_strings_become_literals_and_names_stay(spider, standard):
    assert standard_sql(spider, SCHEMA) == standard


def test_sql_sqlglot_cannot_read_is_none():
    assert standard_sql("SELECT FROM WHERE (", SCHEMA) is None
    assert standard_sql("SELECT 1; SELECT 2", SCHEMA) is None
