"""Enriched NDJSON to zstd Parquet, three ways on one core: `dredge parquet`,
pyarrow and DuckDB. Prints rows/s and output bytes for each (best of RUNS).

    python scripts/bench_parquet.py DREDGE_BIN INPUT.ndjson WORKDIR [RUNS]

Run through scripts/bench-parquet, which builds the binary and the input.
Every engine gets the same typed schema (pyarrow and DuckDB take it from
dredge's own output, so nobody pays for type inference) and zstd.
"""

import json
import os
import subprocess
import sys
import time

import duckdb
import pyarrow as pa
import pyarrow.json as pj
import pyarrow.parquet as pq


def best(runs, fn):
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    dredge, source, work = sys.argv[1:4]
    runs = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    out = {name: os.path.join(work, f"{name}.parquet") for name in ("dredge", "pyarrow", "duckdb")}

    def run_dredge():
        subprocess.run([dredge, "parquet", "--out", out["dredge"], source], check=True, stderr=subprocess.DEVNULL)

    results = {"dredge": best(runs, run_dredge)}
    schema = pq.read_schema(out["dredge"]).remove_metadata()
    rows = pq.ParquetFile(out["dredge"]).metadata.num_rows

    # pyarrow's JSON reader parses timestamps from strings only: read the
    # epoch milliseconds as int64, then cast (a cheap reinterpretation).
    ts = schema.get_field_index("timestamp")
    read_schema = schema.set(ts, pa.field("timestamp", pa.int64()))

    def run_pyarrow():
        table = pj.read_json(
            source,
            read_options=pj.ReadOptions(use_threads=False, block_size=16 << 20),
            parse_options=pj.ParseOptions(explicit_schema=read_schema, unexpected_field_behavior="error"),
        )
        table = table.set_column(ts, schema.field(ts), table.column(ts).cast(schema.field(ts).type))
        pq.write_table(table, out["pyarrow"], compression="zstd")

    results["pyarrow"] = best(runs, run_pyarrow)

    duck_types = {pa.int64(): "BIGINT", pa.string(): "VARCHAR", pa.bool_(): "BOOLEAN"}
    columns = {f.name: duck_types.get(f.type, "BIGINT") for f in schema}
    con = duckdb.connect()
    con.execute("SET threads = 1")
    sql = (
        "COPY (SELECT * REPLACE (make_timestamp_ms(\"timestamp\") AS \"timestamp\") "
        f"FROM read_json(?, format = 'newline_delimited', columns = {json.dumps(columns)})) "
        f"TO '{out['duckdb']}' (FORMAT parquet, COMPRESSION zstd)"
    )
    results["duckdb"] = best(runs, lambda: con.execute(sql, [source]))

    print(f"{rows} rows, {os.path.getsize(source):,} bytes of NDJSON, one core, best of {runs}")
    print(f"{'engine':<8} {'seconds':>8} {'rows/s':>10} {'bytes':>12}")
    for name, seconds in results.items():
        check = pq.ParquetFile(out[name]).metadata.num_rows
        assert check == rows, f"{name} wrote {check} rows, not {rows}"
        print(f"{name:<8} {seconds:>8.3f} {rows / seconds:>10,.0f} {os.path.getsize(out[name]):>12,}")


if __name__ == "__main__":
    main()
