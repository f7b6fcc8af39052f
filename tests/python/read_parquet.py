"""Reads Parquet files with pyarrow and DuckDB (readers this project did not
write) and prints one JSON document: per file the Arrow schema, the
key-value metadata and the row count (pyarrow); over all files the row
count and the sum of every integer column (DuckDB SQL) and every value of
the columns asked for (pyarrow).

    python read_parquet.py COLUMNS_CSV FILE...
"""

import json
import sys

import duckdb
import pyarrow.parquet as pq


def main():
    wanted = sys.argv[1].split(",")
    files = sys.argv[2:]
    out = {"files": [], "values": {c: [] for c in wanted}}
    for f in files:
        pf = pq.ParquetFile(f)
        schema = pf.schema_arrow
        meta = {k.decode(): v.decode() for k, v in (pf.metadata.metadata or {}).items() if k != b"ARROW:schema"}
        out["files"].append(
            {
                "rows": pf.metadata.num_rows,
                "row_groups": pf.metadata.num_row_groups,
                "fields": [[fld.name, str(fld.type)] for fld in schema],
                "metadata": meta,
            }
        )
        table = pf.read(columns=wanted)
        for c in wanted:
            out["values"][c] += [v.isoformat() if hasattr(v, "isoformat") else v for v in table.column(c).to_pylist()]
    con = duckdb.connect()
    ints = [fld.name for fld in pq.read_schema(files[0]) if str(fld.type) == "int64"]
    listed = "[" + ",".join("'" + f + "'" for f in files) + "]"
    row = con.execute(
        "SELECT count(*), " + ", ".join(f'CAST(sum("{c}") AS VARCHAR)' for c in ints) + f" FROM read_parquet({listed})"
    ).fetchone()
    out["duckdb"] = {"count": row[0], "sums": {c: (int(v) if v is not None else None) for c, v in zip(ints, row[1:])}}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
