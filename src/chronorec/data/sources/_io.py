"""Reading files safely: every failure becomes a one-line :class:`ChronorecError` naming the file.

- Gzip is recognised by its magic bytes (not the extension) and decompressed in memory; a
  truncated or corrupt stream is reported as such.
- Delimited text is read by Polars with every column as Utf8 (types are checked afterwards, so a
  bad value can be named by row). The separator, unless given, is sniffed from the first lines:
  the candidate among tab, comma, semicolon, pipe (then space) that splits the header into the
  most fields and agrees with the following lines.
- Polars does not report *where* a file is malformed, and it silently pads short lines. So when a
  read fails, or a required (or the last) column comes back empty, the file is re-scanned line by
  line (streaming, failure path only) to name the first row whose field count differs from the
  header's (mixed separators) or the byte offset of the first invalid UTF-8 sequence.
- Rows are 1-based data rows (the header is not counted), as in :class:`ChronorecError`.
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from chronorec.errors import ChronorecError

GZIP_MAGIC = b"\x1f\x8b"
PARQUET_MAGIC = b"PAR1"
SEPARATORS = ("\t", ",", ";", "|")
_SNIFF_LINES = 50


def check_file(path: Path, what: str = "file") -> Path:
    path = Path(path)
    if not path.exists():
        raise ChronorecError(f"{what} not found", file=path)
    if path.is_dir():
        raise ChronorecError(f"expected a {what}, got a folder", file=path)
    if path.stat().st_size == 0:
        raise ChronorecError("empty file (0 bytes)", file=path)
    return path


def check_dir_or_file(path: Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise ChronorecError("path not found", file=path)
    return path


def find(folder: Path, patterns: Sequence[str]) -> Path | None:
    """First file in ``folder`` matching the patterns (in pattern order, then name order)."""
    for pat in patterns:
        hits = sorted(p for p in folder.glob(pat) if p.is_file())
        if hits:
            return hits[0]
    return None


def head_bytes(path: Path, n: int = 1 << 16) -> bytes:
    with open(path, "rb") as fh:
        start = fh.read(n)
    if start[:2] == GZIP_MAGIC:
        try:
            with gzip.open(path, "rb") as gz:
                return gz.read(n)
        except (OSError, EOFError, zlib.error) as err:
            raise ChronorecError(f"corrupt gzip stream ({err})", file=path) from None
    return start


def read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it starts with the gzip magic. Empty content is an error."""
    check_file(path)
    data = path.read_bytes()
    if data[:2] == GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except EOFError:
            raise ChronorecError("truncated gzip file (stream ends early)", file=path) from None
        except (OSError, zlib.error) as err:
            raise ChronorecError(f"corrupt gzip file ({err})", file=path) from None
    if not data or data.isspace():
        raise ChronorecError("empty file (no content)", file=path)
    return data


def decode(data: bytes, path: Path, encoding: str = "utf-8") -> str:
    try:
        return data.decode(encoding).lstrip("\ufeff")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ChronorecError(
            f"invalid {encoding} byte 0x{data[err.start]:02x} at byte offset {err.start} (line {line}); "
            "re-encode the file as UTF-8 or pass options={'encoding': 'latin-1'}",
            file=path,
            row=line,
        ) from None


def sniff_separator(lines: Sequence[str]) -> str:
    """The separator that best splits ``lines`` (header first) into a constant number of fields."""
    best, best_score = ",", (0, 0.0)
    for sep in (*SEPARATORS, " "):
        rows = list(csv.reader(lines, delimiter=sep))
        if not rows or len(rows[0]) < 2:
            continue
        n = len(rows[0])
        agree = sum(len(r) == n for r in rows[1:]) / max(len(rows) - 1, 1)
        score = (1 if agree >= 0.5 else 0, agree * n)
        if score > best_score:
            best, best_score = sep, score
    return best


def first_lines(data: bytes, n: int = _SNIFF_LINES, *, complete: bool = False) -> list[str]:
    """The first ``n`` non-blank lines of ``data``; the last one is dropped when ``data`` is a cut-off
    head of the file (``complete=False``) and more than one line is available."""
    text = data.decode("utf-8", errors="replace").lstrip("\ufeff")
    lines = text.splitlines()
    if not complete and len(lines) > 1 and not text.endswith("\n"):
        lines = lines[:-1]
    return [ln for ln in lines[: n * 2] if ln.strip()][:n]


def _iter_lines(src: Path | bytes) -> Iterator[bytes]:
    if isinstance(src, bytes):
        yield from io.BytesIO(src)
    else:
        with open(src, "rb") as fh:
            yield from fh


def _show(sep: str) -> str:
    return {"\t": "tab", " ": "space"}.get(sep, repr(sep))


def _fitting_separator(line: str, sep: str, n_fields: int) -> str | None:
    """Another separator that would split ``line`` into the header's field count, if any."""
    for other in (*SEPARATORS, " "):
        if other != sep and len(next(csv.reader([line], delimiter=other))) == n_fields:
            return other
    return None


def diagnose_delimited(
    src: Path | bytes, *, file: Path, sep: str, n_fields: int, has_header: bool, until_row: int | None = None
) -> ChronorecError | None:
    """Scan ``src`` line by line for the first malformed row: invalid UTF-8 or a wrong field count."""
    offset = 0
    state = {"bad": None}

    def text_lines() -> Iterator[str]:
        nonlocal offset
        for lineno, raw in enumerate(_iter_lines(src), 1):
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as err:
                row = lineno - 1 if has_header else lineno
                state["bad"] = ChronorecError(
                    f"invalid UTF-8 byte 0x{raw[err.start]:02x} at byte offset {offset + err.start}; "
                    "re-encode the file as UTF-8 or pass options={'encoding': 'latin-1'}",
                    file=file,
                    row=row if row > 0 else None,
                )
                return
            offset += len(raw)

    reader = csv.reader(text_lines(), delimiter=sep)
    row = 0
    for fields in reader:
        if has_header and reader.line_num == 1:
            continue
        row += 1  # blank lines count as rows, as in Polars' row index
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue
        if len(fields) != n_fields:
            other = _fitting_separator(sep.join(fields), sep, n_fields)
            hint = f"; it splits into {n_fields} on {_show(other)} (mixed separators?)" if other else ""
            return ChronorecError(
                f"{len(fields)} field(s) where the header has {n_fields} (separator {_show(sep)}){hint}",
                file=file,
                row=row,
            )
        if until_row is not None and row >= until_row:
            break
    return state["bad"]


def unique_names(header: Sequence[str]) -> list[str]:
    """Header names made unique: a repeated ``name`` becomes ``name_2``, ``name_3``, ... (first one wins)."""
    seen: dict[str, int] = {}
    out = []
    for name in header:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return out


@dataclass
class Delimited:
    """An opened delimited text file: where to read it from, its separator and header."""

    path: Path
    src: Path | bytes  # the path itself, or the gunzipped / re-encoded bytes
    sep: str
    header: list[str]
    has_header: bool = True

    def read(self, columns: Mapping[str, str], required: Sequence[str] = ()) -> pl.DataFrame:
        """The given columns (output name -> source column) as Utf8, plus ``_row`` (Int64, 1-based)."""
        src, path, sep, header = self.src, self.path, self.sep, self.header
        lf = pl.scan_csv(
            io.BytesIO(src) if isinstance(src, bytes) else src,
            separator=sep,
            has_header=self.has_header,
            new_columns=list(header),
            infer_schema=False,
            raise_if_empty=False,
            truncate_ragged_lines=False,
        )
        exprs = [pl.col(c).alias(name) for name, c in columns.items()]
        lf = lf.with_row_index("_row", offset=1)
        lf = lf.select(pl.col("_row").cast(pl.Int64), *exprs, pl.col(header[-1]).alias("_last"))
        try:
            df = lf.collect()
        except pl.exceptions.PolarsError as err:
            found = self.diagnose()
            msg = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise found or ChronorecError(f"cannot parse as delimited text ({msg})", file=path) from None
        # Polars keeps blank lines as all-null rows: drop them (``_row`` still counts them, like an editor)
        blank = pl.all_horizontal(pl.exclude("_row").is_null())
        if df.select(blank.any()).item():
            df = df.filter(~blank)
        if df.height == 0:
            raise ChronorecError("no data rows (header only)", file=path)
        # Polars pads short lines with nulls: look closer when a required or the last column is empty
        suspects = [pl.col(c).is_null() for c in (*required, "_last") if c in df.columns]
        bad = df.select(pl.any_horizontal(suspects).arg_true().first()).item()
        if bad is not None:
            found = self.diagnose(until_row=int(df["_row"][int(bad)]))
            if found is not None:
                raise found
        if "ts" in columns and not self._ends_with_newline():
            self._check_cut_time(df, columns["ts"])
        return df.drop("_last")

    def _ends_with_newline(self) -> bool:
        if isinstance(self.src, bytes):
            return self.src.endswith((b"\n", b"\r"))
        with open(self.src, "rb") as fh:
            fh.seek(-1, 2)
            return fh.read(1) in (b"\n", b"\r")

    def _check_cut_time(self, df: pl.DataFrame, column: str) -> None:
        """A file cut short mid-line (a truncated copy or download) whose last field is the time
        still parses: ``77<TAB>238<TAB>5<TAB>884`` reads as 884 s after 1970. When the file ends without
        a newline and the last row's integer time has fewer digits than every other row's, refuse."""
        ts = df["ts"].str.strip_chars()
        last = ts[-1]
        if df.height < 2 or last is None or not last.isdigit():
            return
        others = ts.head(df.height - 1)
        digits = others.filter(others.str.contains(r"^\d+$")).str.len_chars()
        if digits.len() and len(last) < int(digits.min()):  # type: ignore[arg-type]
            raise ChronorecError(
                f"time '{last}' has fewer digits than any other row's and the file ends mid-line: "
                "it looks truncated (re-copy the file, or add the missing end of its last line)",
                file=self.path, column=column, row=int(df["_row"][-1]),
            )

    def diagnose(self, until_row: int | None = None) -> ChronorecError | None:
        return diagnose_delimited(
            self.src,
            file=self.path,
            sep=self.sep,
            n_fields=len(self.header),
            has_header=self.has_header,
            until_row=until_row,
        )


def open_delimited(
    path: Path,
    *,
    sep: str | None = None,
    encoding: str = "utf-8",
    names: Sequence[str] | None = None,
) -> Delimited:
    """Open a delimited text file (maybe gzipped): sniff the separator and parse the header.

    With ``names`` the file has no header line and these are its column names.
    """
    check_file(path)
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic == PARQUET_MAGIC:
        raise ChronorecError("this is a Parquet file; use the 'parquet' source", file=path)
    enc = encoding.lower().replace("_", "-")
    src: Path | bytes = path
    if magic[:2] == GZIP_MAGIC or enc not in ("utf-8", "utf8"):
        data = read_bytes(path)
        if enc not in ("utf-8", "utf8"):
            data = decode(data, path, encoding).encode("utf-8")
        src, head = data, data[: 1 << 16]
        complete = len(data) <= 1 << 16
    else:
        head = head_bytes(path)
        complete = len(head) < 1 << 16
    if b"\x00" in head[:4096]:  # else the "header" is a line of binary noise and the errors talk about columns
        raise ChronorecError(
            "not delimited text: the file holds NUL bytes (binary, another format, or UTF-16 text: "
            "re-save it as UTF-8 or pass options={'encoding': 'utf-16'})",
            file=path,
        )
    lines = first_lines(head, complete=complete)
    if not lines:
        raise ChronorecError("empty file (no content)", file=path)
    if sep is None:
        sep = sniff_separator(lines)
    if names is None:
        header = [h.strip().lstrip("\ufeff") for h in next(csv.reader([lines[0]], delimiter=sep))]
        return Delimited(path, src, sep, unique_names(header))
    return Delimited(path, src, sep, list(names), has_header=False)


def read_lines(path: Path, encoding: str = "utf-8") -> pl.DataFrame:
    """Non-blank lines of a text file: ``_row`` (1-based physical line number) and ``line``."""
    text = decode(read_bytes(path), path, encoding)
    df = pl.DataFrame({"line": text.splitlines()}).with_row_index("_row", offset=1)
    df = df.with_columns(pl.col("_row").cast(pl.Int64)).filter(pl.col("line").str.strip_chars() != "")
    if df.height == 0:
        raise ChronorecError("empty file (no content)", file=path)
    return df


def read_parquet(path: Path) -> tuple[pl.LazyFrame, list[str]]:
    """A lazy scan of a Parquet file and its column names; corrupt or truncated files are errors."""
    check_file(path)
    with open(path, "rb") as fh:
        start = fh.read(4)
        fh.seek(-4, 2) if path.stat().st_size >= 8 else fh.seek(0)
        end = fh.read(4)
    if start != PARQUET_MAGIC:
        raise ChronorecError("not a Parquet file (no PAR1 magic at the start)", file=path)
    if end != PARQUET_MAGIC:
        raise ChronorecError("truncated Parquet file (no PAR1 footer at the end)", file=path)
    try:
        lf = pl.scan_parquet(path)
        names = list(lf.collect_schema().names())
    except (pl.exceptions.PolarsError, OSError) as err:
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ChronorecError(f"corrupt Parquet file ({msg})", file=path) from None
    return lf, names


def collect_parquet(lf: pl.LazyFrame, path: Path) -> pl.DataFrame:
    try:
        df = lf.collect()
    except (pl.exceptions.PolarsError, OSError) as err:
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ChronorecError(f"corrupt Parquet file ({msg})", file=path) from None
    if df.height == 0:
        raise ChronorecError("no data rows", file=path)
    return df
