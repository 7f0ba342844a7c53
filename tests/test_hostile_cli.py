"""The `storefront` command and the catalog loaders against hostile input (issue #8, finding 7).

Each case failed before: a traceback and exit status 1, five retries of a URL that
can never work, a 4-line pydantic dump, a RecursionError or bare ValueError from a
catalog file, a 1 MB title that loaded from JSONL but not from CSV, and an ESC
sequence in a title that reached the terminal raw.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from storefront_sdk import Catalog, CatalogError
from storefront_sdk.catalog import (
    MAX_ATTRIBUTE_VALUE_CHARS,
    MAX_ATTRIBUTES,
    MAX_ID_CHARS,
    MAX_NAME_CHARS,
    MAX_TITLE_CHARS,
)
from storefront_sdk.cli import main
from storefront_sdk.text import printable

# What must never reach a terminal raw: C0 controls, DEL, C1 controls, bidi controls.
RAW_CONTROL = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"
)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "storefront_sdk.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def assert_one_line_error(stderr: str, *needles: str) -> str:
    lines = stderr.strip("\n").split("\n")
    assert len(lines) == 1, stderr
    assert lines[0].startswith("storefront") and "error:" in lines[0], stderr
    assert "Traceback" not in stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


BUILD = ["build", "--user", "demo-1", "--llm", "none"]
MISSING = f"/nonexistent-{uuid.uuid4().hex}"  # a folder no machine has


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        (["-o", f"{MISSING}/x"], ["--output", MISSING, "does not exist"]),
        (["--base-url", "http://[::1", "--llm", "http", "--model", "m"], ["--base-url"]),
        (["--llm", "http", "--model", "m", "--base-url", "notaurl"], ["'notaurl'", "http://"]),
        (["--llm", "http", "--model", "m", "--base-url", "ftp://x"], ["'ftp'", "http://"]),
        (["--llm", "http", "--model", "m", "--base-url", "http://"], ["no host"]),
        (["--placements", "0"], ["--placements", "less than 1"]),
        (["--placements", "many"], ["--placements", "not a whole number"]),
        (["--products", "600"], ["--products", "less than or equal to 500"]),
        (["--min-products", "-1"], ["--min-products"]),
        (["--format", "xml"], ["--format", "invalid choice"]),
        (["--catalog", f"{MISSING}/products.csv"], [f"{MISSING}/products.csv", "not found"]),
        (["--catalog", "/etc/hostname.txt"], ["--catalog"]),
        (["--llm", "http"], ["--base-url and --model"]),
        (["--cache-dir", __file__], ["--cache-dir", "not a folder"]),
        (["--user", "u" * 50_000], ["unknown demo user", " ..."]),
    ],
    ids=lambda v: (
        " ".join(v).replace(MISSING, "MISSING")[:60]
        if isinstance(v, list) and v and v[0].startswith("-")
        else ""
    ),
)
def test_bad_arguments_are_one_line_with_status_2(
    extra: list[str], needles: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*BUILD, *extra]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing was built
    line = assert_one_line_error(captured.err, *needles)
    assert "retry" not in line and "attempt" not in line  # a bad URL fails at once


def test_eval_base_url_fails_fast(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["eval", "--instacart-dir", str(tmp_path), "--configs", "http", "--model", "m"]
    assert main([*args, "--base-url", "notaurl", "--out", str(tmp_path / "out")]) == 2
    assert_one_line_error(capsys.readouterr().err, "--base-url", "'notaurl'")


@pytest.mark.parametrize(
    ("extra", "needles"),
    [
        (["--users", "0"], ["--users 0"]),
        (["--users", "-3"], ["--users -3"]),
        (["--pages", "-1"], ["--pages -1"]),
    ],
)
def test_eval_bad_numbers_fail_fast(
    extra: list[str], needles: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", "--instacart-dir", str(tmp_path), "--quiet", *extra]) == 2
    assert_one_line_error(capsys.readouterr().err, *needles)


def test_eval_missing_folder_is_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nowhere"
    args = ["eval", "--instacart-dir", str(missing), "--quiet", "--out", str(tmp_path / "o")]
    assert main(args) == 2
    assert_one_line_error(capsys.readouterr().err, str(missing), "not found")


def test_output_to_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*BUILD, "-o", str(tmp_path)]) == 2
    assert_one_line_error(capsys.readouterr().err, str(tmp_path), "is a directory")


def test_output_to_an_unwritable_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "page.txt"
    target.write_text("old")
    target.chmod(0o400)
    try:
        if target.open("a").writable():  # running as root: permissions do not apply
            pytest.skip("file permissions are not enforced for this user")
    except PermissionError:
        pass
    assert main([*BUILD, "-o", str(target)]) == 2
    assert_one_line_error(capsys.readouterr().err, str(target))


def test_no_traceback_reaches_the_terminal_in_a_real_process() -> None:
    for args in (
        [*BUILD, "-o", f"{MISSING}/x"],
        [*BUILD, "--llm", "http", "--model", "m", "--base-url", "http://[::1"],
        [*BUILD, "--placements", "0"],
        ["nosuchcommand"],
        [],
    ):
        proc = run_cli(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert_one_line_error(proc.stderr)


def test_debug_flag_and_env_show_the_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (["--debug", *BUILD], [*BUILD, "--debug"]):
        assert main([*argv, "--catalog", f"{MISSING}/p.csv"]) == 2
        err = capsys.readouterr().err
        assert "Traceback" in err and err.strip().splitlines()[-1].startswith("storefront: error")
    monkeypatch.setenv("STOREFRONT_DEBUG", "1")
    assert main([*BUILD, "--catalog", f"{MISSING}/p.csv"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_an_internal_error_is_one_line_with_status_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import storefront_sdk.cli as cli

    def broken(path: str | None) -> Catalog:
        raise RuntimeError("something the SDK did not expect\nsecond line")

    monkeypatch.setattr(cli, "load_catalog", broken)
    assert main(BUILD) == 1
    assert_one_line_error(capsys.readouterr().err, "internal error: RuntimeError", "--debug")


# -- hostile catalog files through the CLI ------------------------------------------------------


def test_deeply_nested_jsonl_is_a_catalog_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "deep.jsonl"
    deep = "[" * 100_000 + "]" * 100_000
    path.write_text('{"id": "1", "title": "Milk"}\n{"id": "2", "title": ' + deep + "}\n")
    with pytest.raises(CatalogError) as info:
        Catalog.from_jsonl(path)
    assert (info.value.row, info.value.field) == (2, "title") and "nested" in str(info.value)
    assert main([*BUILD, "--catalog", str(path)]) == 2
    assert_one_line_error(capsys.readouterr().err, "deep.jsonl", "row 2", "'title'")


def test_five_thousand_digit_id_is_a_catalog_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "digits.jsonl"
    path.write_text('{"id": ' + "9" * 5000 + ', "title": "Milk"}\n')
    with pytest.raises(CatalogError) as info:
        Catalog.from_jsonl(path)
    assert (info.value.row, info.value.field) == (1, "id")
    assert main([*BUILD, "--catalog", str(path)]) == 2
    assert_one_line_error(capsys.readouterr().err, "digits.jsonl", "row 1", "'id'")
    as_string = tmp_path / "digits_str.jsonl"
    as_string.write_text(json.dumps({"id": "9" * 5000, "title": "Milk"}) + "\n")
    with pytest.raises(CatalogError, match="MAX_ID_CHARS") as info:
        Catalog.from_jsonl(as_string)
    assert info.value.field == "id"


# -- the same limits for every format ------------------------------------------------------------


def write_csv(path: Path, product: dict[str, str]) -> Path:
    cols = list(product)
    cells = ['"' + product[c].replace('"', '""') + '"' for c in cols]
    path.write_text(",".join(cols) + "\n" + ",".join(cells) + "\n", encoding="utf-8")
    return path


def write_jsonl(path: Path, product: dict[str, str]) -> Path:
    attrs = {k[5:]: v for k, v in product.items() if k.startswith("attr_")}
    obj: dict[str, object] = {k: v for k, v in product.items() if not k.startswith("attr_")}
    if attrs:
        obj["attributes"] = attrs
    path.write_text(json.dumps(obj) + "\n", encoding="utf-8")
    return path


def write_instacart(path: Path, product: dict[str, str]) -> Path:
    path.mkdir()
    aisle = product.get("aisle", "bread").replace('"', '""')
    (path / "aisles.csv").write_text(f'aisle_id,aisle\n1,"{aisle}"\n', encoding="utf-8")
    dept = product.get("department", "bakery").replace('"', '""')
    (path / "departments.csv").write_text(
        f'department_id,department\n1,"{dept}"\n', encoding="utf-8"
    )
    title = product["title"].replace('"', '""')
    (path / "products.csv").write_text(
        f'product_id,product_name,aisle_id,department_id\n"{product["id"]}","{title}",1,1\n',
        encoding="utf-8",
    )
    return path


LOADERS: dict[str, tuple[Callable[[Path, dict[str, str]], Path], Callable[[Path], Catalog]]] = {
    "csv": (write_csv, Catalog.from_csv),
    "jsonl": (write_jsonl, Catalog.from_jsonl),
    "instacart": (write_instacart, Catalog.from_instacart),
}
INSTACART_NAME = {"id": "product_id", "title": "product_name"}


@pytest.mark.parametrize("fmt", list(LOADERS))
@pytest.mark.parametrize(
    ("field", "limit", "const"),
    [
        ("title", MAX_TITLE_CHARS, "MAX_TITLE_CHARS"),
        ("id", MAX_ID_CHARS, "MAX_ID_CHARS"),
        ("aisle", MAX_NAME_CHARS, "MAX_NAME_CHARS"),
        ("department", MAX_NAME_CHARS, "MAX_NAME_CHARS"),
    ],
)
def test_field_limits_are_the_same_for_every_format(
    tmp_path: Path, fmt: str, field: str, limit: int, const: str
) -> None:
    write, load = LOADERS[fmt]
    base = {"id": "1", "title": "Bread", "department": "bakery", "aisle": "bread"}
    at_limit = load(write(tmp_path / f"ok.{fmt}", {**base, field: "x" * limit}))
    assert len(getattr(next(iter(at_limit)), field)) == limit
    for size in (limit + 1, 1_000_000):  # the 1 MB title loaded from JSONL only, before
        with pytest.raises(CatalogError) as info:
            load(write(tmp_path / f"bad{size}.{fmt}", {**base, field: "x" * size}))
        err = info.value
        expected = INSTACART_NAME.get(field, field) if fmt == "instacart" else field
        if fmt == "instacart" and field in ("aisle", "department"):
            assert err.path is not None and err.path.endswith(f"{field}s.csv")  # where it is
        assert err.field == expected
        assert err.row == (1 if fmt == "jsonl" else 2)  # CSV rows count the header
        assert const in str(err) and f"{size:,} characters" in str(err)


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_attribute_limits_are_the_same_for_csv_and_jsonl(tmp_path: Path, fmt: str) -> None:
    write, load = LOADERS[fmt]
    base = {"id": "1", "title": "Bread"}
    for size in (MAX_ATTRIBUTE_VALUE_CHARS + 1, 300_000):
        with pytest.raises(CatalogError, match="MAX_ATTRIBUTE_VALUE_CHARS") as info:
            load(write(tmp_path / f"a{size}.{fmt}", {**base, "attr_size": "z" * size}))
        assert "size" in str(info.value.field)
    many = {f"attr_k{i}": "v" for i in range(MAX_ATTRIBUTES + 1)}
    with pytest.raises(CatalogError, match="MAX_ATTRIBUTES"):
        load(write(tmp_path / f"many.{fmt}", {**base, **many}))


# -- terminal output ---------------------------------------------------------------------------

HOSTILE_TITLES = [
    "Milk \x1b]0;pwned\x07 Whole",  # OSC: would retitle the terminal
    "Eggs \x1b[2J\x1b[H Large",  # CSI: would clear the screen
    "Bread\x00 Rye",  # NUL
    "Butter \u202eretlaS",  # RIGHT-TO-LEFT OVERRIDE
    "Cheese \x9b31m Red",  # C1 CSI
    "Jam \u2066isolate\u2069 \u200fmark",
]


def hostile_catalog(tmp_path: Path) -> tuple[Path, list[str]]:
    demo = list(Catalog.demo())[:300]
    rows = [
        {"id": p.id, "title": p.title, "aisle": p.aisle, "department": p.department} for p in demo
    ]
    hostile_ids = []
    for i, title in enumerate(HOSTILE_TITLES):
        pid = f"h{i}"
        hostile_ids.append(pid)
        rows.append({"id": pid, "title": title, "aisle": "dairy \x1b[31m", "department": "dairy"})
    path = tmp_path / "hostile.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path, hostile_ids


def test_control_characters_are_neutralised_in_table_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, ids = hostile_catalog(tmp_path)
    args = ["build", "--user", "u1", "--llm", "none", "--catalog", str(path)]
    args += ["--history", ",".join(ids), "--min-products", "1"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "\\x1b]0;pwned\\x07" in out and "\\u202e" in out  # shown, escaped
    assert not RAW_CONTROL.search(out), RAW_CONTROL.search(out)
    for title in HOSTILE_TITLES:
        assert printable(title) in out  # every hostile product is on the page
    # JSON stays exact: the titles round-trip unchanged.
    assert main([*args, "--format", "json"]) == 0
    page = json.loads(capsys.readouterr().out)
    titles = {sp["product"]["title"] for pl in page["placements"] for sp in pl["products"]}
    assert set(HOSTILE_TITLES) <= titles


def test_error_lines_are_neutralised_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad\x1b]0;x\x07.csv"
    path.write_text("id,title,price\n1,Milk,abc\n", encoding="utf-8")
    assert main([*BUILD, "--catalog", str(path)]) == 2
    err = capsys.readouterr().err
    assert not RAW_CONTROL.search(err) and "\\x1b" in err


def test_printable_keeps_ordinary_text() -> None:
    text = "Crème brûlée, 苹果, café ☕ 🍎 — 50% off\u200d"
    assert printable(text) == text
    assert (
        printable("a\tb\nc\r\x1b\x7f\x85\u202e\u2028")
        == "a\\x09b\\x0ac\\x0d\\x1b\\x7f\\x85\\u202e\\u2028"
    )
