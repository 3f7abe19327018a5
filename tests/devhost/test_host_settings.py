"""host.json's functionTimeout and the .NET TimeSpan text it is written in."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from devhost.app_index import AppLoadError, read_host_settings
from devhost.timespan import format_timespan, parse_timespan


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("00:10:00", timedelta(minutes=10)),
        ("00:00:00.5", timedelta(milliseconds=500)),
        ("1.02:03:04.0000001", timedelta(days=1, hours=2, minutes=3, seconds=4, microseconds=0.1)),
        ("01:30", timedelta(hours=1, minutes=30)),
    ],
)
def test_timespan_text_parses_like_dotnet(text: str, expected: timedelta) -> None:
    assert parse_timespan(text) == expected


@pytest.mark.parametrize("text", ["10 minutes", "24:00:00", "00:60:00", "00:00:61", "", "1.2.3"])
def test_malformed_timespans_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_timespan(text)


@pytest.mark.parametrize(
    ("span", "text"),
    [
        (timedelta(minutes=10), "00:10:00"),
        (timedelta(seconds=0.3), "00:00:00.3000000"),
        (timedelta(days=1, hours=2), "1.02:00:00"),
    ],
)
def test_timespans_are_written_in_the_invariant_format(span: timedelta, text: str) -> None:
    assert format_timespan(span) == text


def write_host_json(tmp_path: Path, **fields: object) -> Path:
    (tmp_path / "host.json").write_text(json.dumps({"version": "2.0", **fields}))
    return tmp_path


def test_function_timeout_is_read_from_host_json(tmp_path: Path) -> None:
    assert read_host_settings(write_host_json(tmp_path, functionTimeout="00:02:30")).function_timeout == 150


def test_function_timeout_defaults_to_the_hosts_and_minus_one_means_unbounded(tmp_path: Path) -> None:
    assert read_host_settings(write_host_json(tmp_path)).function_timeout == 1800
    assert read_host_settings(write_host_json(tmp_path, functionTimeout="-1")).function_timeout is None


@pytest.mark.parametrize("value", ["ten minutes", "00:00:00"])
def test_a_bad_function_timeout_stops_the_host_with_a_clear_error(tmp_path: Path, value: str) -> None:
    with pytest.raises(AppLoadError, match="functionTimeout"):
        read_host_settings(write_host_json(tmp_path, functionTimeout=value))


def test_the_project_host_json_bounds_functions_at_ten_minutes() -> None:
    assert read_host_settings(Path(__file__).parents[2]).function_timeout == 600
