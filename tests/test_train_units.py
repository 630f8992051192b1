"""Pure parts of the trainer: shard dealing, tracking, labels, metrics, front-ends, models, baseline, probes."""

import math

import numpy as np
import pytest
import torch

from mixtape.labels import key_vocabulary
from mixtape.train.baseline import estimate_clip, key_correlations, onset_autocorrelation, tempo_from_autocorrelation
from mixtape.train.data import StreamTracker, crop, expand_urls, shard_slot, window_starts
from mixtape.train.frontend import FrontendConfig, LogFrequency, LogMel
from mixtape.train.loop import lr_at
from mixtape.train.metrics import (
    class_metrics,
    clip_level,
    key_metrics,
    mirex_key_score,
    roc_auc_macro,
    tag_metrics,
    tempo_metrics,
)
from mixtape.train.models import PRESETS, ModelSpec, build_model, count_parameters, input_samples
from mixtape.train.targets import LabelEncoder, key_index, target_to_tempo, tempo_to_target
from mixtape.train.tasks import TaskError, TaskSet


def test_brace_expansion_keeps_order():
    assert expand_urls("http://h/train-{000000..000002}.tar") == [
        "http://h/train-000000.tar", "http://h/train-000001.tar", "http://h/train-000002.tar"]
    assert expand_urls("a-{0..1}.tar b.tar") == ["a-0.tar", "a-1.tar", "b.tar"]


def test_crop_random_centre_and_pad():
    x = np.arange(10, dtype=np.float32)
    assert crop(x, 4, None).tolist() == [3, 4, 5, 6]
    assert crop(x, 12, None).tolist() == [*range(10), 0, 0]
    rng = np.random.default_rng(0)
    assert {int(crop(x, 4, rng)[0]) for _ in range(50)} == set(range(7))


def test_evaluation_windows_tile_the_whole_snippet():
    assert window_starts(10, 4) == [0, 4, 6]
    assert window_starts(8, 4) == [0, 4]
    assert window_starts(3, 4) == [0]
    for n, length in ((48000, 19683), (48000, 32000), (100, 7)):
        starts = window_starts(n, length)
        covered = np.zeros(n, bool)
        for s in starts:
            covered[s:s + length] = True
        assert covered.all() and starts[-1] + length == n


@pytest.mark.parametrize("n_shards,world,workers", [(8, 2, 2), (7, 2, 2), (3, 2, 2), (16, 3, 1), (5, 1, 4)])
def test_shard_slots_partition_every_epoch(n_shards, world, workers):
    urls = [f"s{i}.tar" for i in range(n_shards)]
    orders = []
    for epoch in range(3):
        slots = [shard_slot(urls, epoch, 11, r, world, w, workers) for r in range(world) for w in range(workers)]
        flat = [u for s in slots for u in s]
        assert sorted(flat) == sorted(urls)  # every shard exactly once per epoch across all slots
        orders.append(flat)
    if n_shards > 3:
        assert orders[0] != orders[1]  # reshuffled per epoch


def test_tracker_follows_the_round_robin_and_skips_exhausted_workers():
    t = StreamTracker(3)
    for worker in (0, 1, 2, 0):
        t.consume({"worker": worker, "position": [5, 0], "stats": {"samples": 4}, "end": False})
    assert t.state()["next_worker"] == 1
    t.consume({"worker": 1, "position": [9, 0], "stats": {"corrupt": 2, "errors": ["x"]}, "end": True})
    assert t.state()["next_worker"] == 2 and t.state()["exhausted"] == ["1"]
    t.consume({"worker": 2, "position": [7, 1], "stats": {}, "end": False})
    assert t.state()["next_worker"] == 0  # 1 is exhausted: skipped
    assert t.stats.corrupt == 2 and t.stats.samples == 16
    resumed = StreamTracker(3, 0, t.state())
    assert resumed.state() == t.state()
    assert StreamTracker(3, 1, t.state()).state()["positions"] == {}  # a state for another epoch is ignored


def test_label_encoder_all_tasks():
    enc = LabelEncoder(["bass", "drums", "piano"], {"genre": ["jaz", "roc"]}, key_vocabulary())
    y = enc.encode({"tags": ["piano", "bass", "kazoo"], "classes": {"genre": "roc"},
                    "key": {"tonic": "Db", "mode": "minor"}, "tempo": 150.0})
    assert y["tags"].tolist() == [1, 0, 1]
    assert y["class:genre"] == 1 and y["key"] == key_index("C# minor") == 13
    assert target_to_tempo(y["tempo"]) == pytest.approx(150.0)
    soft = enc.encode({"tags": ["bass", "piano"], "soft_tags": {"bass": 0.8, "piano": 0.2}})
    assert soft["tags"].tolist() == pytest.approx([0.8, 0, 0.2])
    empty = enc.encode({})
    assert empty["class:genre"] == -1 and empty["key"] == -1 and math.isnan(empty["tempo"])
    assert enc.encode({"classes": {"genre": "polka"}, "tempo": -3})["class:genre"] == -1
    assert tempo_to_target(120.0) == 0.0


def test_metrics():
    t = np.array([[1, 0], [0, 1], [1, 1], [0, 1]], dtype=float)
    s = np.array([[0.9, 0.2], [0.1, 0.8], [0.8, 0.7], [0.3, 0.9]])
    assert roc_auc_macro(s, t) == pytest.approx(1.0)
    m = tag_metrics(s, t, ["a", "b"])
    assert m["per_tag"]["a"]["pr_auc"] == pytest.approx(1.0) and m["evaluated_tags"] == 2
    cs, ct = clip_level(s, t, ["a", "a", "b", "b"])
    assert cs.shape == (2, 2) and np.allclose(cs[0], [0.5, 0.5]) and ct.tolist() == [[1, 1], [1, 1]]
    assert roc_auc_macro(np.ones((2, 1)), np.ones((2, 1))) is None
    c = class_metrics(np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.5, 0.5]]), np.array([0, 1, 1, -1]), ["x", "y"])
    assert c["accuracy"] == pytest.approx(2 / 3) and c["confusion"] == [[1, 0], [1, 1]] and c["n"] == 3


def test_mirex_key_score_matches_the_published_weights():
    C, G, F, Am, Cm, Em = (key_index(k) for k in ("C major", "G major", "F major", "A minor", "C minor", "E minor"))
    assert mirex_key_score(C, C) == 1.0
    assert mirex_key_score(G, C) == 0.5  # estimate a fifth above
    assert mirex_key_score(F, C) == 0.0 and mirex_key_score(F, C, strict_fifth=False) == 0.5
    assert mirex_key_score(Am, C) == 0.3 and mirex_key_score(C, Am) == 0.3  # relative
    assert mirex_key_score(Cm, C) == 0.2  # parallel
    assert mirex_key_score(Em, C) == 0.0
    probs = np.eye(24)[[C, G]]
    assert key_metrics(probs, np.array([C, C]))["mirex"] == pytest.approx(0.75)


def test_tempo_accuracy_1_and_2():
    m = tempo_metrics(np.array([120.0, 124.0, 60.0, 180.0, 100.0]), np.array([120.0, 120.0, 120.0, 60.0, np.nan]))
    assert m["n"] == 4 and m["acc1"] == pytest.approx(2 / 4) and m["acc2"] == pytest.approx(1.0)


def test_lr_schedule_warms_up_then_decays():
    lrs = [lr_at(s, 100, 10, 1.0) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[10] > lrs[50] > lrs[99] >= 0.05


def test_task_set_slices_losses_and_masks():
    enc = LabelEncoder(["a", "b"], {"genre": ["x", "y", "z"]}, key_vocabulary())
    tasks = TaskSet.from_names(["all"], enc)
    assert [t.name for t in tasks.tasks] == ["tags", "genre", "key", "tempo"] and tasks.size == 2 + 3 + 24 + 1
    logits = torch.zeros(2, tasks.size, requires_grad=True)
    targets = {"tags": torch.tensor([[1.0, 0], [0, 1]]), "class:genre": torch.tensor([2, -1]),
               "key": torch.tensor([-1, -1]), "tempo": torch.tensor([0.5, float("nan")])}
    loss, parts = tasks.loss(logits, targets)
    assert set(parts) == {"tags", "genre", "tempo"}  # no key labels in the batch: no key loss
    assert parts["genre"] == pytest.approx(math.log(3)) and math.isfinite(float(loss.detach()))
    loss.backward()
    assert logits.grad[1, 2:5].abs().sum() == 0  # the unlabelled sample gets no genre gradient
    with pytest.raises(TaskError, match="this dataset offers"):
        TaskSet.from_names(["mood"], enc)
    with pytest.raises(TaskError, match="min_count"):
        TaskSet.from_names(["tags"], LabelEncoder([]))


def test_frontend_options():
    sr = 16000
    t = np.arange(sr) / sr
    wave = torch.from_numpy(np.stack([np.sin(2 * np.pi * 100 * t), np.sin(2 * np.pi * 3000 * t)]).astype(np.float32))
    plain = LogMel(sr, FrontendConfig(norm="none"))(wave)
    weighted = LogMel(sr, FrontendConfig(norm="a_weighting"))(wave)
    assert plain.shape == (2, 1, 64, 63)
    # A-weighting attenuates 100 Hz by ~19 dB and leaves 3 kHz about as it is
    assert weighted[0].max() < plain[0].max() - 1.0 and weighted[1].max() > plain[1].max() - 0.5
    db = LogMel(sr, FrontendConfig(norm="none", compression="db", top_db=60))(wave)
    assert (db.amax(dim=(2, 3)) - db.amin(dim=(2, 3)) <= 60.0 + 1e-3).all()
    norm = LogMel(sr, FrontendConfig(norm="per_frequency"))
    norm.train()
    x = norm(torch.randn(4, sr) * 0.1)
    assert x.mean(dim=(0, 3)).abs().max() < 1e-4  # each mel band standardised over the batch
    with pytest.raises(ValueError, match="compression"):
        FrontendConfig(compression="sqrt")


@pytest.mark.parametrize("hz", [130.81, 261.63, 440.0, 1000.0, 3000.0])
def test_a_pure_tone_lands_in_its_log_frequency_bin(hz):
    sr = 16000
    cfg = FrontendConfig(kind="logfreq", n_fft=4096, hop=512, norm="none")
    t = torch.arange(2 * sr) / sr
    x = LogFrequency(sr, cfg)(torch.sin(2 * np.pi * hz * t)[None])
    assert x.shape == (1, 1, cfg.bands, 2 * sr // 512 + 1) and cfg.bands == 216
    expected = 36 * np.log2(hz / 65.406)  # 3 bins per semitone above C2
    assert abs(int(x[0, 0].mean(dim=1).argmax()) - expected) <= 0.6


def test_chroma_of_a_c_major_triad_peaks_at_c_e_g():
    sr = 16000
    t = torch.arange(2 * sr) / sr
    for octave in (0.5, 1, 2):
        triad = sum(torch.sin(2 * np.pi * f * octave * t) for f in (261.63, 329.63, 392.0))
        chroma = LogFrequency(sr, FrontendConfig(kind="chroma", n_fft=4096, hop=512, norm="none"))(triad[None])
        assert chroma.shape[:3] == (1, 1, 12)
        assert set(chroma[0, 0].mean(dim=1).argsort(descending=True)[:3].tolist()) == {0, 4, 7}


def test_log_frequency_options_and_device_placement():
    sr = 16000
    with pytest.raises(ValueError, match="Nyquist"):
        LogFrequency(sr, FrontendConfig(kind="logfreq", n_fft=4096, octaves=8))
    with pytest.raises(ValueError, match="a_weighting"):
        LogFrequency(sr, FrontendConfig(kind="chroma", n_fft=4096, norm="a_weighting"))
    with pytest.raises(ValueError, match="kind"):
        FrontendConfig(kind="cqt-ish")
    norm = LogFrequency(sr, FrontendConfig(kind="logfreq", n_fft=2048, hop=256, octaves=5, bins_per_semitone=2))
    norm.train()
    x = norm(torch.randn(4, sr) * 0.1)
    assert x.shape[2] == 120 and x.mean(dim=(0, 3)).abs().max() < 1e-4  # each band standardised
    moved = norm.to("meta")  # buffers follow the module to its device (a GPU in training)
    assert moved.fb.device.type == "meta" and moved.window.device.type == "meta"
    db = LogFrequency(sr, FrontendConfig(kind="logfreq", n_fft=4096, compression="db", top_db=50, norm="none"))
    y = db(torch.randn(2, sr))
    assert (y.amax(dim=(2, 3)) - y.amin(dim=(2, 3)) <= 50 + 1e-3).all()


def test_existing_families_take_the_pitch_front_ends_and_keycnn_defaults_to_log_frequency():
    from mixtape.train.models import PRESET_FRONTENDS, preset_frontend

    for preset, kind in (("pons-small", "logfreq"), ("pons-small", "chroma"), ("shortchunk-small", "logfreq"),
                         ("keycnn", "chroma")):
        spec = ModelSpec(preset, 5, 16000, frontend=FrontendConfig(kind=kind, n_fft=4096, hop=512))
        assert build_model(spec)(torch.zeros(2, 32000)).shape == (2, 5)
    with pytest.raises(ValueError, match="needs at least 16 bands"):
        build_model(ModelSpec("shortchunk-small", 5, 16000, frontend=FrontendConfig(kind="chroma", n_fft=4096)))
    assert preset_frontend("keycnn", FrontendConfig()) == PRESET_FRONTENDS["keycnn"]
    assert preset_frontend("keycnn", FrontendConfig(kind="chroma")).kind == "chroma"
    assert preset_frontend("pons", FrontendConfig()) == FrontendConfig()


@pytest.mark.parametrize("preset", list(PRESETS))
def test_every_preset_has_the_promised_shapes(preset):
    from mixtape.train.models import preset_frontend

    spec = ModelSpec(preset, 17, 16000, frontend=preset_frontend(preset, FrontendConfig()))
    model = build_model(spec).eval()
    n = input_samples(spec, 2.0)
    params = count_parameters(model)
    if preset.endswith("-small"):
        assert params < 100_000
    assert model(torch.zeros(3, n)).shape == (3, 17)
    assert model(torch.zeros(1, 48000)).shape == (1, 17)  # longer than the input: global pooling takes it
    assert model.embed(torch.zeros(2, n)).shape == (2, model.backbone.embed_dim)
    if spec.family == "samplecnn":
        assert n == 3 ** 9
        assert model.backbone.stages(model.backbone.stem(torch.zeros(1, 1, n))).shape[-1] == 1  # 3^n collapses to 1
    wider = build_model(ModelSpec(preset, 17, 16000, width=2 * spec.resolved_width, frontend=spec.frontend))
    assert count_parameters(wider) > params
    assert ModelSpec.from_dict(spec.as_dict()) == spec


def test_cli_lists_the_same_presets():
    from mixtape.cli import MODEL_PRESETS

    assert tuple(PRESETS) == MODEL_PRESETS


def _chord_track(sr: int, notes: list[int], seconds: float = 3.0, bpm: float | None = None) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    x = sum(np.sin(2 * np.pi * 440 * 2 ** ((n - 69) / 12) * t) for n in notes) / len(notes)
    if bpm:
        period = 60.0 / bpm
        x = x * (0.3 + 0.7 * np.exp(-((t % period) / 0.03)))  # accented note onsets on every beat
    return x.astype(np.float32)


def test_baseline_finds_key_and_tempo_of_a_plain_signal():
    sr = 16000
    c_major = [60, 64, 67, 72, 62, 65, 69, 71]  # the scale's notes, tonic triad doubled
    est = estimate_clip("c", [_chord_track(sr, c_major, 4.0, bpm=100.0), _chord_track(sr, [60, 64, 67], 4.0, 100.0)],
                        sr)
    assert key_vocabulary()[est.key] == "C major"
    assert est.tempo == pytest.approx(100.0, rel=0.04)
    a_minor = [57, 60, 64, 69, 57, 64]
    assert key_vocabulary()[int(np.argmax(key_correlations(np.bincount(np.array(a_minor) % 12, minlength=12)
                                                            .astype(float))))] == "A minor"
    ac = onset_autocorrelation(_chord_track(sr, [60], 6.0, bpm=140.0), sr)
    assert tempo_from_autocorrelation(ac, sr) == pytest.approx(140.0, rel=0.04)


@pytest.mark.parametrize("fmt,sr", [("FLAC", 16000), ("WAV", 16000), ("FLAC", 22050)])
def test_a_random_crop_decodes_only_its_frames_and_equals_the_full_crop(fmt, sr, tmp_path):
    import io

    import soundfile as sf

    from mixtape.hashing import rng_for
    from mixtape.train.data import decode_audio, decode_random_crop

    x = (np.sin(np.arange(3 * sr) * 0.01) * 0.5 + np.linspace(-0.3, 0.3, 3 * sr)).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, x, sr, format=fmt, subtype="PCM_16")
    data = buf.getvalue()
    for key in ("a", "b", "c", "d"):
        fast = decode_random_crop(data, 16000, 20000, rng_for(1, key))
        slow = crop(decode_audio(data, 16000), 20000, rng_for(1, key))
        assert fast.shape == (20000,) and np.array_equal(fast, slow)
    assert decode_random_crop(data, 16000, 60000, rng_for(1, "x")).shape == (60000,)  # longer than the file: padded


def test_tempo_probes_use_the_half_octave_classes_the_readme_documents():
    import pyarrow as pa

    from mixtape.train.transfer import _label_vector

    bins = _label_vector(pa.table({"tempo": [84.8, 84.9, 100.0, 119.9, 120.0, None]}), "tempo")
    assert list(bins) == ["60+ bpm", "85+ bpm", "85+ bpm", "85+ bpm", "120+ bpm", None]
