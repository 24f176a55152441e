"""The streamed score file: row groups of a fixed size whatever the rows came in, part files merged in
``entity_id`` order, and nothing left behind on an error."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from models.scorefile import ScoreFileWriter, score_schema
from models.spark_scoring import merged_scores, read_scores

AS_OF = date(2025, 12, 31)


def rows(n: int, seed: int = 0) -> pa.Table:
    """``n`` score rows of the score file's schema with distinct ids in a random order."""
    rng = np.random.default_rng(seed)
    ids = [f"9144{i:014d}" for i in rng.permutation(n)]
    schema = score_schema(details=True)
    values = {
        "entity_id": ids,
        "as_of": [AS_OF] * n,
        "score": rng.random(n),
        "model_tier": rng.choice(list("ABCD"), n).tolist(),
        "tier": rng.choice(list("ABCD"), n).tolist(),
        "rules": ["[]"] * n,
        "review": rng.random(n) < 0.1,
        "model_version": ["3"] * n,
        "reasons": [f'[{{"feature": "f{i % 17}"}}]' for i in range(n)],
        "policy_version": ["p"] * n,
        "feature_version": ["v"] * n,
        "base_value": np.full(n, -2.0),
        "log_odds": rng.normal(size=n),
        "contributions": ["{}"] * n,
        "features": ["{}"] * n,
    }
    return pa.table({f.name: pa.array(values[f.name], f.type) for f in schema})


def write_parts(table: pa.Table, folder, files: int) -> None:
    """``table`` as Spark's ``write_scores`` leaves it: part files of an ``as_of=`` folder, each sorted."""
    part = folder / f"as_of={AS_OF}"
    part.mkdir(parents=True)
    for i, piece in enumerate(np.array_split(np.arange(table.num_rows), files)):
        chunk = table.take(piece).drop_columns(["as_of"])
        chunk = chunk.take(pa.compute.sort_indices(chunk.column("entity_id")))
        pq.write_table(chunk, part / f"part-{i:05d}.parquet")
    (part / "_SUCCESS").touch()


def test_a_file_written_in_any_pieces_has_the_same_bytes(tmp_path):
    table = rows(2_500)
    schema = score_schema()
    for name, sizes in (("whole", [2_500]), ("pieces", [1, 999, 7, 1_200, 293])):
        with ScoreFileWriter(tmp_path / f"{name}.parquet", schema, rows=400) as writer:
            start = 0
            for size in sizes:
                writer.write(table.slice(start, size))
                start += size
        assert writer.written == 2_500
    assert (tmp_path / "whole.parquet").read_bytes() == (tmp_path / "pieces.parquet").read_bytes()
    meta = pq.ParquetFile(tmp_path / "whole.parquet").metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [400] * 6 + [100]
    tiers = pd.Series(table.column("tier").to_pylist()).value_counts().to_dict()
    assert writer.tiers == tiers and writer.review == int(np.sum(table.column("review").to_numpy()))


def test_an_error_leaves_no_file(tmp_path):
    out = tmp_path / "scores.parquet"
    with pytest.raises(RuntimeError), ScoreFileWriter(out, score_schema(), rows=10) as writer:
        writer.write(rows(25))
        raise RuntimeError("scoring failed half-way")
    assert list(tmp_path.iterdir()) == []


def test_sorted_part_files_merge_in_entity_order(tmp_path):
    table = rows(3_001, seed=4)
    write_parts(table, tmp_path / "parts", files=7)
    names = score_schema().names
    merged = pa.concat_tables(merged_scores(tmp_path / "parts", names, rows=250))
    expected = read_scores(tmp_path / "parts")[names]
    pd.testing.assert_frame_equal(merged.to_pandas(date_as_object=True), expected, check_exact=True)
    sizes = [t.num_rows for t in merged_scores(tmp_path / "parts", names, rows=250)]
    assert sizes == [250] * 12 + [1]


def test_unsorted_part_files_are_not_merged(tmp_path):
    folder = tmp_path / "parts" / f"as_of={AS_OF}"
    folder.mkdir(parents=True)
    pq.write_table(rows(50).drop_columns(["as_of"]), folder / "part-00000.parquet")
    assert merged_scores(tmp_path / "parts", score_schema().names, rows=10) is None
