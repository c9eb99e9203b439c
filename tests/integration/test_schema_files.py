"""supabase/schema/ (the readable schema: today's definition of every object) is what the
migrations build. After adding or merging a migration, `make schema` regenerates it."""

from __future__ import annotations

from scripts import schema


def test_schema_files_match_the_migrations(db_url: str) -> None:
    diff = schema.differences(schema.render(schema.dump(db_url)))
    assert not diff, (
        "supabase/schema/ differs from what the migrations build: run `make schema` and "
        "commit the result\n" + diff
    )
