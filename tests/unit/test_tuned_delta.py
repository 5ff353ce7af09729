"""The shipped domain delta: packing keeps the change, applying is exact, and a wrong base is refused."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from modelbuild import tuned_delta as td

ROOT = Path(__file__).resolve().parents[2]


def _folder(path: Path, weights: dict[str, np.ndarray], stamp: dict | None = None) -> Path:
    path.mkdir(parents=True)
    save_file(weights, str(path / "model.safetensors"))
    (path / "config.json").write_text("{}")
    (path / "tokenizer.json").write_text("{}")
    if stamp is not None:
        (path / td.STAMP_NAME).write_text(json.dumps(stamp))
    return path


@pytest.fixture
def pair(tmp_path):
    rng = np.random.default_rng(7)
    base = {"enc.w": rng.normal(size=(96, 80)).astype(np.float32), "enc.b": rng.normal(size=80).astype(np.float32),
            "emb.word": rng.normal(size=(50, 8)).astype(np.float32)}
    low_rank_change = (rng.normal(size=(96, 3)) @ rng.normal(size=(3, 80)) * 1e-3).astype(np.float32)
    tuned = {"enc.w": base["enc.w"] + low_rank_change, "enc.b": base["enc.b"] + np.float32(1e-3),
             "emb.word": base["emb.word"]}
    return (_folder(tmp_path / "base", base, {"builder_version": 1}), _folder(tmp_path / "tuned", tuned),
            base, tuned)


def test_pack_then_apply_gives_the_tuned_weights_and_skips_unchanged_tensors(pair, tmp_path):
    base_dir, tuned_dir, base, tuned = pair
    delta = tmp_path / "d.npz"
    summary = td.pack(base_dir, tuned_dir, delta, rank=8)
    assert summary["tensors"] == 2  # the word embeddings did not change: not shipped
    assert summary["relative_error"] < 0.02  # a rank-3 change survives a rank-8 factorisation (int8 rounding only)
    out = td.apply(base_dir, delta, tmp_path / "out", log=lambda *_: None)
    got = load_file(str(out / "model.safetensors"))
    np.testing.assert_array_equal(got["emb.word"], base["emb.word"])
    np.testing.assert_array_equal(got["enc.b"], tuned["enc.b"])
    change, want = got["enc.w"] - base["enc.w"], tuned["enc.w"] - base["enc.w"]
    assert np.abs(change - want).max() < 0.02 * np.abs(want).max()
    assert json.loads((out / td.STAMP_NAME).read_text())["builder"] == "modelbuild.tuned_delta"


def test_rebuild_is_integer_exact_whatever_the_order_of_work():
    rng = np.random.default_rng(1)
    a_q, a_s, b_q, b_s = td.low_rank(rng.normal(size=(64, 48)), rank=16)
    one = td.rebuild(a_q, a_s, b_q, b_s)
    # the same product computed column block by column block (another "CPU's" order) gives the same bits
    blocks = np.concatenate([td.rebuild(a_q, a_s, b_q[:, i:i + 7], b_s[i:i + 7]) for i in range(0, 48, 7)], axis=1)
    assert one.tobytes() == blocks.tobytes()


def test_apply_is_skipped_when_current_and_redone_when_the_delta_changes(pair, tmp_path):
    base_dir, tuned_dir, *_ = pair
    delta = tmp_path / "d.npz"
    td.pack(base_dir, tuned_dir, delta, rank=4)
    said: list[str] = []
    td.apply(base_dir, delta, tmp_path / "out", log=said.append)
    td.apply(base_dir, delta, tmp_path / "out", log=said.append)
    assert "up to date" in said[-1]
    td.pack(base_dir, tuned_dir, delta, rank=2)
    td.apply(base_dir, delta, tmp_path / "out", log=said.append)
    assert "built" in said[-1]


def test_a_delta_for_another_base_model_is_refused(pair, tmp_path):
    base_dir, tuned_dir, *_ = pair
    delta = tmp_path / "d.npz"
    td.pack(base_dir, tuned_dir, delta, rank=4)
    other = _folder(tmp_path / "other", {"enc.w": np.zeros((10, 10), np.float32)})
    with pytest.raises(td.DeltaError, match="base model"):
        td.apply(other, delta, tmp_path / "out2", log=lambda *_: None)


def test_the_shipped_delta_fits_the_base_model_the_setup_builds():
    delta = ROOT / "knowledge" / "model" / "e5-small-shebao.delta.npz"
    with np.load(delta) as z:
        meta = json.loads(z["__meta__"].tobytes())
        names = {k.split("|")[0] for k in z.files if k != "__meta__"}
    assert meta["format"] == td.FORMAT
    assert "embeddings.word_embeddings.weight" not in names  # never tuned, never shipped
    assert any(n.startswith("encoder.layer.11.") for n in names)


@pytest.mark.parametrize("sources, seen", [(["trainset"], False), (["trainset", "evalset-training-fold"], True)])
def test_what_the_model_learnt_from_travels_from_training_to_the_runtime(pair, tmp_path, sources, seen):
    from knowledge.embedding import _trained_on_evalset

    base_dir, tuned_dir, *_ = pair
    (tuned_dir / td.STAMP_NAME).write_text(json.dumps({"recipe": {"version": 5, "citizen_sources": sources}}))
    delta = tmp_path / "d.npz"
    td.pack(base_dir, tuned_dir, delta, rank=4)
    with np.load(delta) as z:
        meta = json.loads(z["__meta__"].tobytes())
    assert meta["trained_on_evalset"] is seen and meta["recipe"]["citizen_sources"] == sources
    out = td.apply(base_dir, delta, tmp_path / "out", log=lambda *_: None)
    # the runtime reads it from the built folder: the answer bands then skip the questions the model saw
    assert _trained_on_evalset(out) is seen
    # a delta packed before the field existed learnt from the evaluation set's fold
    stamp = json.loads((out / td.STAMP_NAME).read_text())
    (out / td.STAMP_NAME).write_text(json.dumps({k: v for k, v in stamp.items() if k != "trained_on_evalset"}))
    assert _trained_on_evalset(out) is True
    (out / td.STAMP_NAME).write_text(json.dumps({"builder": "modelbuild.finetune"}))
    assert _trained_on_evalset(out) is False


def test_the_shipped_delta_says_what_it_learnt_from():
    from modelbuild.finetune import RECIPE

    with np.load(ROOT / "knowledge" / "model" / "e5-small-shebao.delta.npz") as z:
        meta = json.loads(z["__meta__"].tobytes())
    # the shipped weights come from the recipe this repository holds (retrain with `make finetune` when it changes)
    assert meta["recipe"]["version"] == RECIPE["version"]
    assert meta["recipe"]["citizen_sources"] == RECIPE["citizen_sources"]
