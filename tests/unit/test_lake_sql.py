"""The local side of the named queries, without a stack: every query translates and runs."""

from pathlib import Path

import pytest

from local.lake_sql import LocalLake, main, named_queries, named_query, translate


def _parameters(sql: str) -> list[str]:
    values = {"day": "2026-03-07", "instant": "2026-03-07T00:00:00Z", "sensor": "s"}
    count = sql.count("?")
    if count == 5:  # sensor, first day, last day, start, end
        return [
            values["sensor"],
            values["day"],
            values["day"],
            values["instant"],
            values["instant"],
        ]
    if count == 4:
        return [values["day"], values["day"], values["instant"], values["instant"]]
    return [values["day"]] * count


@pytest.mark.parametrize("query", named_queries(), ids=lambda q: q.name)
def test_every_named_query_runs_on_an_empty_lake(query: object, tmp_path: Path) -> None:
    sql = named_query(query.name).sql  # type: ignore[attr-defined]
    with LocalLake(tmp_path) as lake:
        result = lake.query(sql, _parameters(sql))
    assert result.rows == []
    assert result.columns


def test_trino_functions_become_duckdb_ones() -> None:
    duckdb_sql = translate("SELECT max_by(value, measured_at) FROM readings")
    assert "ARG_MAX" in duckdb_sql.upper()


def test_an_unknown_named_query_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="readings_per_provider_per_day"):
        named_query("nope")


def test_the_command_lists_and_refuses_a_missing_lake(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--list"]) == 0
    assert "gaps_per_sensor" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["--lake", str(tmp_path / "none"), "SELECT 1"])
