"""The unit of data a source hands the pipeline (``rtclass.ingest.chunk.Chunk``)."""

import dataclasses

import numpy as np
import pytest

from rtclass.ingest.chunk import Chunk


def test_a_chunk_knows_where_it_sits_on_the_sample_timeline():
    c = Chunk(np.zeros((30, 4), np.float32), first_sample=120, t_last=1.5)
    assert c.n_samples == 30 and c.end_sample == 150 and c.gap_before == 0
    gap = Chunk(np.zeros((10, 4), np.float32), 450, 2.0, gap_before=300)
    assert gap.end_sample == 460 and gap.gap_before == 300


def test_consecutive_chunks_tile_the_timeline():
    chunks, first = [], 0
    for n in (1, 30, 7, 300):
        chunks.append(Chunk(np.zeros((n, 2), np.float32), first, 0.0))
        first = chunks[-1].end_sample
    assert all(a.end_sample == b.first_sample for a, b in zip(chunks, chunks[1:]))
    assert chunks[-1].end_sample == 338


def test_an_empty_chunk_ends_where_it_starts():
    c = Chunk(np.zeros((0, 384), np.float32), 99, 0.0)
    assert c.n_samples == 0 and c.end_sample == 99


def test_chunks_carry_no_other_fields():
    """slots: a misspelt attribute is an error, not a silent new field."""
    c = Chunk(np.zeros((1, 1), np.float32), 0, 0.0)
    assert [f.name for f in dataclasses.fields(Chunk)] == ["data", "first_sample", "t_last", "gap_before"]
    with pytest.raises(AttributeError):
        c.gap = 3


def test_joined_chunks_keep_the_first_start_and_gap_and_the_last_time():
    from rtclass.ingest.chunk import join_chunks

    rng = np.random.default_rng(3)
    parts = [Chunk(rng.normal(size=(n, 4)).astype(np.float32), 0, 0.0) for n in (5, 30, 2)]
    parts[0].first_sample, parts[0].gap_before = 100, 7
    parts[1].first_sample, parts[2].first_sample = 105, 135
    parts[1].t_last, parts[2].t_last = 1.0, 2.0
    joined = join_chunks(parts)
    assert (joined.first_sample, joined.end_sample, joined.gap_before, joined.t_last) == (100, 137, 7, 2.0)
    np.testing.assert_array_equal(joined.data, np.concatenate([p.data for p in parts]))
    assert join_chunks(parts[:1]) is parts[0]
