"""Reading a batch job's input: strict CSV and JSONL, damage confined or refused."""

from __future__ import annotations

import codecs
from pathlib import Path

import pytest

from ccmessaging_async.jobs._errors import JobRefusedError
from ccmessaging_async.jobs._input import identify, read_rows

HEADER = "called,caller_present,call_data\n"


def rows_of(path: Path, text: str | bytes) -> list[tuple[int, str | None, str | None]]:
    if isinstance(text, str):
        text = text.encode()
    path.write_bytes(text)
    return [(r.line, r.called, r.error) for r in read_rows(path)]


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def csv_text(n: int) -> str:
    return HEADER + "".join(f"1390000{i:04d},95599,\n" for i in range(n))


def test_stray_quote_refuses_the_whole_file_naming_its_line(tmp_path: Path) -> None:
    """One stray quote in row 11 of 100 refuses the job, naming line 12; nothing swallowed."""
    lines = csv_text(100).splitlines(keepends=True)
    lines[11] = '"' + lines[11]
    with pytest.raises(JobRefusedError, match=r"line 12: not valid CSV"):
        rows_of(tmp_path / "in.csv", "".join(lines))


def test_two_stray_quotes_cannot_swallow_the_rows_between(tmp_path: Path) -> None:
    """A quoted number running over several lines is refused, not read as one bad row."""
    lines = csv_text(100).splitlines(keepends=True)
    lines[11] = '"' + lines[11]
    lines[50] = lines[50].replace(",95599", '",95599')
    with pytest.raises(JobRefusedError, match=r"line 12: a quoted number runs on to line 51"):
        rows_of(tmp_path / "in.csv", "".join(lines))


def test_stray_quote_past_the_field_limit_is_a_clear_refusal(tmp_path: Path) -> None:
    """Past 128 KiB an unterminated quote is the same refusal, not a csv traceback."""
    lines = csv_text(20_000).splitlines(keepends=True)
    lines[11] = '"' + lines[11]
    with pytest.raises(JobRefusedError, match=r"line 12: not valid CSV \(field larger"):
        rows_of(tmp_path / "in.csv", "".join(lines))


def test_a_bad_byte_fails_only_its_row(tmp_path: Path) -> None:
    """A non-UTF-8 byte in row 2,000 fails that row with its line number; the rest read."""
    data = csv_text(3000).encode().replace(b"13900001999,95599", b"1390000\xff999,95599")
    rows = rows_of(tmp_path / "in.csv", data)
    assert len(rows) == 3000
    bad = [r for r in rows if r[2] is not None]
    assert bad == [
        (2001, None, "InvalidRequestError: line 2001 is not UTF-8 (byte 0xff at column 8)")
    ]


@pytest.mark.parametrize("name", ["in.csv", "in.jsonl"])
def test_excel_byte_order_mark_is_accepted(tmp_path: Path, name: str) -> None:
    """A UTF-8 BOM (Excel's "CSV UTF-8") does not hide the first column or key."""
    text = HEADER + "13900000001,95599,\n" if name.endswith(".csv") else '{"called": "1"}\n'
    rows = rows_of(tmp_path / name, codecs.BOM_UTF8 + text.encode())
    assert [error for _, _, error in rows] == [None]


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("called,caller_present,called\n", "the column 'called' appears twice"),
        ("called,caller_presnt\n", "unknown column 'caller_presnt'"),
        ("called,callerPresent,caller_present\n", "'caller_present' appears twice"),
        ("number,caller_present\n", "unknown column 'number'"),
        ("called,,call_data\n", "column 2 has no name"),
        ("caller_present\n", "must name the column 'called'"),
    ],
)
def test_header_problems_refuse_the_job(tmp_path: Path, header: str, message: str) -> None:
    """Duplicate, unknown or missing columns are refused before any row is read."""
    with pytest.raises(JobRefusedError, match=message):
        rows_of(tmp_path / "in.csv", header + "1,2\n")


def test_row_problems_fail_only_their_rows(tmp_path: Path) -> None:
    """Missing or bad numbers, extra cells and stray quotes fail their own row."""
    text = HEADER + '13900000001,,\n,95599,\n139"01,,\n' + "1" * 40 + ",,\n1,2,3,4\n\n2,,\n"
    rows = rows_of(tmp_path / "in.csv", text)
    assert [(line, error is None) for line, _, error in rows] == [
        (2, True),
        (3, False),
        (4, False),
        (5, False),
        (6, False),
        (8, True),
    ]
    assert "called is missing" in str(rows[1][2])
    assert "stray" in str(rows[2][2])
    assert "more cells" in str(rows[4][2])


def test_call_data_may_span_lines(tmp_path: Path) -> None:
    """A quoted call_data with a line break is one row; the next row keeps its line number."""
    rows = rows_of(tmp_path / "in.csv", HEADER + '1,2,"a\nb"\n3,,\n')
    assert rows == [(2, "1", None), (4, "3", None)]


def test_jsonl_rows_and_refusals(tmp_path: Path) -> None:
    """JSONL: bad lines fail alone; unknown or repeated keys refuse the job."""
    text = '{"called": "1", "callerPresent": "9"}\n{oops\n\n[1]\n{"called": 5.5}\n'
    rows = rows_of(tmp_path / "in.jsonl", text)
    assert [(line, error is None) for line, _, error in rows] == [
        (1, True),
        (2, False),
        (4, False),
        (5, False),
    ]
    with pytest.raises(JobRefusedError, match="line 2: unknown key 'calld'"):
        rows_of(tmp_path / "in.jsonl", '{"called": "1"}\n{"calld": "2"}\n')
    with pytest.raises(JobRefusedError, match="the key 'called' appears twice"):
        rows_of(tmp_path / "in.jsonl", '{"called": "1", "called": "2"}\n')


def test_jsonl_numbers_written_as_integers_are_their_digits(tmp_path: Path) -> None:
    """A CRM's export with numbers as JSON integers is read; floats and booleans are not."""
    text = (
        '{"called": 13900000003, "caller_present": 95599}\n'
        '{"called": true}\n{"called": -13900000003}\n{"called": 1.39e10}\n'
    )
    rows = list(read_rows(write(tmp_path / "in.jsonl", text)))
    assert (rows[0].called, rows[0].caller_present, rows[0].error) == (
        "13900000003",
        "95599",
        None,
    )
    assert [row.error is not None for row in rows[1:]] == [True, True, True]


def test_a_report_fed_back_as_input_is_refused(tmp_path: Path) -> None:
    """A results file given as input is recognised, never read as new calls."""
    line = (
        '{"row": 0, "line": 2, "status": "succeeded", "called": "1", "result": null, '
        '"error": null, "attempts": 1, "latency_ms": 3.0}\n'
    )
    with pytest.raises(JobRefusedError, match="looks like a report of an earlier job"):
        rows_of(tmp_path / "in.jsonl", line)


def test_row_digests_tell_rows_apart(tmp_path: Path) -> None:
    """Each row's digest follows its bytes; the file identity follows the whole file."""
    path = tmp_path / "in.csv"
    path.write_text(HEADER + "1,,\n2,,\n1,,\n")
    digests = [r.digest for r in read_rows(path)]
    assert digests[0] == digests[2] != digests[1]
    before = identify(path)
    path.write_text(HEADER + "1,,\n2,,\n1,,\n")
    assert identify(path) == before
    path.write_text(HEADER + "2,,\n1,,\n1,,\n")
    assert identify(path) != before
    assert identify(path).size == before.size
