"""Augmentations, measured on the audio they produce, and the label changes that go with them."""

import math

import numpy as np
import pytest

from mixtape.augment import dsp
from mixtape.augment.label_transforms import (
    energy_share,
    mix_labels,
    pitch_shift_labels,
    time_stretch_labels,
    transpose_chord,
    transpose_key,
    window,
)
from mixtape.augment.ops import Context, apply_chain, apply_chain_labels, ordered, warp_params
from mixtape.augment.sampling import draw_chain
from mixtape.hashing import rng_for
from mixtape.spec import parse_spec

SR = 16000


def tone(freq=440.0, seconds=2.0, amp=0.5, sr=SR):
    t = np.arange(int(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)[None, :]


def peak_hz(audio, sr=SR):
    x = audio[0, audio.shape[1] // 4: audio.shape[1] * 3 // 4].astype(np.float64)
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x)), n=8 * len(x)))
    return float(np.fft.rfftfreq(8 * len(x), 1 / sr)[np.argmax(spec)])


def click_track(bpm, seconds, sr=SR):
    x = np.zeros((1, int(seconds * sr)), np.float32)
    period = 60.0 / bpm
    for k in range(int(seconds / period)):
        i = round(k * period * sr)
        n = min(200, x.shape[1] - i)
        x[0, i:i + n] += np.hanning(400)[200:200 + n].astype(np.float32) * np.sin(
            2 * np.pi * 2000 * np.arange(n) / sr).astype(np.float32)
    return x


def onsets_bpm(audio, sr=SR):
    env = np.abs(audio[0])
    frame = sr // 100
    energy = np.add.reduceat(env, np.arange(0, len(env), frame))
    threshold = 0.3 * energy.max()
    starts = [i for i in range(1, len(energy)) if energy[i] > threshold >= energy[i - 1]]
    return 60.0 / (np.median(np.diff(starts)) * frame / sr)


def db(x):
    return 10 * math.log10(x)


# ------------------------------------------------------------------------------------------------ audio
def test_pitch_shift_plus_two_semitones_moves_440_to_493_9():
    out = apply_chain(tone(), SR, [{"op": "pitch_shift", "semitones": 2}])
    assert out.shape == (1, 2 * SR)
    assert peak_hz(out) == pytest.approx(440 * 2 ** (2 / 12), rel=0.01)  # 493.88 Hz


def test_time_stretch_1_25_turns_120_bpm_clicks_into_150_bpm():
    clicks = click_track(120, 10.0)
    out = apply_chain(clicks, SR, [{"op": "time_stretch", "rate": 1.25}], n_out=8 * SR)
    assert out.shape == (1, 8 * SR)
    assert onsets_bpm(clicks) == pytest.approx(120, rel=0.02)
    assert onsets_bpm(out) == pytest.approx(150, rel=0.02)


def test_fused_pitch_and_stretch_do_both_in_one_pass():
    chain = [{"op": "time_stretch", "rate": 1.25}, {"op": "pitch_shift", "semitones": -3}]
    out = apply_chain(tone(seconds=2.5), SR, chain, n_out=2 * SR)
    assert peak_hz(out) == pytest.approx(440 * 2 ** (-3 / 12), rel=0.01)
    assert warp_params([{"op": "time_stretch", "rate": 1.25}, {"op": "pitch_shift", "semitones": -3}]) == (1.25, -3)


def test_speed_moves_pitch_and_tempo_together_by_whole_semitones_and_its_labels_follow():
    """Tape-speed perturbation: +2 semitones is 440 -> 493.9 Hz and 120 -> 134.7 BPM at once, from
    ``duration * factor`` of the source; key and chords transpose exactly, tempo and times scale."""
    from mixtape.augment.label_transforms import speed_labels

    factor = 2 ** (2 / 12)
    chain = [{"op": "speed", "semitones": 2}]
    assert warp_params(chain) == (pytest.approx(factor), 2)  # the plan reads duration * factor of the source
    out = apply_chain(tone(seconds=2 * factor + 0.1), SR, chain, n_out=2 * SR)
    assert out.shape == (1, 2 * SR)
    assert peak_hz(out) == pytest.approx(440 * factor, rel=0.005)
    clicks = apply_chain(click_track(120, 12.0), SR, chain, n_out=10 * SR)
    assert onsets_bpm(clicks) == pytest.approx(120 * factor, rel=0.02)
    labels = {"tags": [], "classes": {}, "key": {"tonic": "A", "mode": "minor"}, "tempo": 120.0,
              "chords": [{"start": 1.0, "end": 2.0, "label": "A:min"}], "extra": {}}
    moved = speed_labels(labels, 2)
    assert moved["key"] == {"tonic": "B", "mode": "minor"} and moved["chords"][0]["label"] == "B:min"
    assert moved["tempo"] == round(120 * factor, 3) and moved["chords"][0]["start"] == round(1 / factor, 6)
    assert apply_chain_labels(labels, chain) == moved
    # after a speed change, a stretch and a shift still apply, in one more pass
    both = apply_chain(tone(seconds=3.0), SR, [*chain, {"op": "pitch_shift", "semitones": -2}], n_out=2 * SR)
    assert peak_hz(both) == pytest.approx(440, rel=0.01)


def test_mix_at_6_db_snr_has_that_energy_ratio():
    a, b = tone(440), tone(1000, amp=0.1)
    out = dsp.mix(a, b, 6.0)
    bed = out - a
    assert db(np.mean(a.astype(np.float64) ** 2) / np.mean(bed.astype(np.float64) ** 2)) == pytest.approx(6.0, abs=0.05)
    half = dsp.mix(a, b[:, :SR // 2], 0.0, offset_frames=SR)  # a short partner loops; the offset leaves silence
    assert np.array_equal(half[:, :SR], a[:, :SR]) and np.abs(half[:, SR:] - a[:, SR:]).max() > 0


@pytest.mark.parametrize("colour, slope", [("white", 0.0), ("pink", -3.0), ("brown", -6.0)])
def test_coloured_noise_has_its_slope_and_snr(colour, slope):
    noise = dsp.coloured_noise((1, 4 * SR), colour, seed=7)
    psd = np.abs(np.fft.rfft(noise[0].astype(np.float64))) ** 2
    f = np.fft.rfftfreq(noise.shape[1], 1 / SR)
    band = lambda lo, hi: psd[(f >= lo) & (f < hi)].mean()  # noqa: E731
    per_octave = db(band(2000, 4000) / band(1000, 2000))
    assert per_octave == pytest.approx(slope, abs=1.0)
    noisy = dsp.add_noise(tone(), 20.0, colour, seed=7)
    assert db(np.mean(tone().astype(np.float64) ** 2) / np.mean((noisy - tone()).astype(np.float64) ** 2)) == \
        pytest.approx(20.0, abs=0.05)
    assert np.array_equal(noisy, dsp.add_noise(tone(), 20.0, colour, seed=7))  # the seed decides the noise


def test_filters_do_what_their_names_say():
    low, high = tone(200), tone(6000)
    assert dsp.rms(dsp.filter_(high, SR, "lowpass", 1000, 0.707)) < 0.05 * dsp.rms(high)
    assert dsp.rms(dsp.filter_(low, SR, "lowpass", 1000, 0.707)) > 0.9 * dsp.rms(low)
    assert dsp.rms(dsp.filter_(low, SR, "highpass", 2000, 0.707)) < 0.05 * dsp.rms(low)
    peaked = dsp.filter_(tone(1000), SR, "peaking", 1000, 1.0, gain_db=6.0)
    assert 20 * math.log10(dsp.rms(peaked[:, SR:]) / dsp.rms(tone(1000)[:, SR:])) == pytest.approx(6.0, abs=0.2)


def test_reverb_adds_a_tail_and_dry_is_identity():
    click = np.zeros((1, SR), np.float32)
    click[0, 100] = 1.0
    ir = dsp.synthetic_ir(SR, 0.5, seed=3)
    wet = dsp.reverb(click, ir, 0.5)
    assert np.abs(wet[0, 2000:6000]).max() > 1e-3  # energy long after the click
    assert np.array_equal(dsp.reverb(click, ir, 0.0), click)
    decay = dsp.rms(ir[:, int(0.25 * SR):int(0.3 * SR)]) / dsp.rms(ir[:, 1:int(0.05 * SR)])
    assert 20 * math.log10(decay) == pytest.approx(-60 * 0.25 / 0.5, abs=6)  # 60 dB over rt60


def test_clip_and_compress_limit_peaks():
    loud = tone(amp=0.9)
    assert np.abs(dsp.clip(loud, 0.5)).max() == pytest.approx(0.5)
    assert np.abs(dsp.clip(loud, 0.5, soft=True)).max() < 0.5
    squashed = dsp.compress(loud, SR, threshold_db=-20, ratio=4)
    assert np.abs(squashed[:, SR:]).max() < 0.5 * np.abs(loud).max()
    quiet = tone(amp=0.01)
    assert np.allclose(dsp.compress(quiet, SR, threshold_db=-20, ratio=4), quiet)


def test_chain_order_applies_warps_first_and_keeps_length():
    chain = [{"op": "gain", "db": -6.0}, {"op": "pitch_shift", "semitones": 1}, {"op": "clip", "threshold": 0.2,
                                                                                   "mode": "hard"}]
    assert [s["op"] for s in ordered(chain)] == ["pitch_shift", "gain", "clip"]
    out = apply_chain(tone(), SR, chain)
    assert out.dtype == np.float32 and out.shape == (1, 2 * SR) and np.abs(out).max() <= 0.2 + 1e-6


# ------------------------------------------------------------------------------------------------ labels
def test_keys_transpose_with_normalised_spelling():
    assert transpose_key({"tonic": "C", "mode": "major"}, 2) == {"tonic": "D", "mode": "major"}
    assert transpose_key({"tonic": "A", "mode": "minor"}, -3) == {"tonic": "F#", "mode": "minor"}
    assert transpose_key({"tonic": "B", "mode": "major"}, 1) == {"tonic": "C", "mode": "major"}
    assert transpose_key({"tonic": "Bb", "mode": "minor"}, 12) == {"tonic": "Bb", "mode": "minor"}


def test_chords_transpose_root_and_note_bass():
    assert transpose_chord("C:maj", 2) == "D:maj"
    assert transpose_chord("A:min7/b3", -3) == "F#:min7/b3"  # a degree bass stays
    assert transpose_chord("C/G", 2) == "D/A"  # a note bass moves
    assert transpose_chord("N", 5) == "N"


def test_label_transforms_follow_the_audio():
    labels = {"tags": ["piano"], "classes": {}, "key": {"tonic": "C", "mode": "major"}, "tempo": 120.0,
              "chords": [{"start": 0.0, "end": 2.0, "label": "C:maj"}, {"start": 2.0, "end": 4.0, "label": "G:7"}],
              "events": [{"start": 1.0, "end": 3.0, "label": "vocals"}], "extra": {}}
    shifted = pitch_shift_labels(labels, 2)
    assert shifted["key"] == {"tonic": "D", "mode": "major"}
    assert [c["label"] for c in shifted["chords"]] == ["D:maj", "A:7"]
    stretched = time_stretch_labels(labels, 1.25)
    assert stretched["tempo"] == 150.0
    assert stretched["events"] == [{"start": 0.8, "end": 2.4, "label": "vocals"}]
    assert stretched["chords"][1] == {"start": 1.6, "end": 3.2, "label": "G:7"}
    continuous = pitch_shift_labels(labels, 0.5)
    assert continuous["key"] == labels["key"] and set(continuous["stale"]) == {"key", "chords"}


def test_windows_cut_time_stamped_labels():
    labels = {"tags": ["band"], "events": [{"start": 0.0, "end": 2.0, "label": "vocals"},
                                           {"start": 3.0, "end": 6.0, "label": "guitar solo"}]}
    bridge = window(labels, 2.0, 1.0)
    assert bridge["events"] == [] and bridge["tags"] == ["band"]  # the bridge does not inherit "vocals"
    assert window(labels, 1.5, 2.0)["events"] == [{"start": 0.0, "end": 0.5, "label": "vocals"},
                                                  {"start": 1.5, "end": 2.0, "label": "guitar solo"}]


def test_mixing_unions_or_weights_tags_and_keeps_the_dominant_key():
    a = {"tags": ["piano"], "key": {"tonic": "C", "mode": "major"}, "tempo": 100.0, "classes": {"genre": "cla"}}
    b = {"tags": ["drums"], "key": {"tonic": "E", "mode": "minor"}, "tempo": 140.0, "classes": {"genre": "roc"}}
    m = mix_labels(a, b, 6.0)
    assert m["tags"] == ["drums", "piano"] and m["key"] == a["key"] and m["tempo"] == 100.0
    soft = mix_labels(a, b, 6.0, mode="soft")
    assert soft["soft_tags"] == {"drums": round(1 - energy_share(6.0), 4), "piano": round(energy_share(6.0), 4)}
    assert soft["soft_tags"]["piano"] == pytest.approx(0.7992, abs=1e-4)
    louder_partner = mix_labels(a, b, -6.0)
    assert louder_partner["key"] == b["key"] and louder_partner["tempo"] == 140.0
    cleared = mix_labels(a, b, 6.0, key_tempo="clear")
    assert cleared["key"] is None and cleared["tempo"] is None


def test_descriptors_that_cannot_follow_are_marked_stale():
    labels = {"tags": [], "key": None, "tempo": 90.0, "extra": {"acousticbrainz_descriptors": {"bpm": 90.0}}}
    out = apply_chain_labels(labels, [{"op": "gain", "db": 3.0}])
    assert out["stale"] == ["extra.acousticbrainz_descriptors"]
    stretched = apply_chain_labels(labels, [{"op": "time_stretch", "rate": 0.8}])
    assert stretched["tempo"] == 72.0 and stretched["stale"] == ["extra.acousticbrainz_descriptors"]
    assert "stale" not in apply_chain_labels(labels, [])


def test_mix_labels_use_the_partner_in_context():
    ctx = Context(partner_labels={"tags": ["rain"], "key": None, "tempo": None})
    out = apply_chain_labels({"tags": ["piano"], "key": None, "tempo": None},
                             [{"op": "mix", "snr_db": 3.0, "offset": 0.0, "labels": "union", "key_tempo": "dominant"}],
                             ctx)
    assert out["tags"] == ["piano", "rain"]


# ------------------------------------------------------------------------------------------------ parameters
def test_parameters_are_drawn_per_key_and_within_spec_ranges():
    spec = parse_spec({"name": "a", "seed": 3, "sources": [{"kind": "folder", "path": "x"}], "augment": {
        "variants": 1, "chain": [{"op": "pitch_shift", "semitones": [-2, 2]},
                                 {"op": "time_stretch", "rate": [0.8, 1.25]},
                                 {"op": "add_noise", "colour": ["pink", "brown"]}, {"op": "mix", "p": 0.0}]}})
    draws = [draw_chain(spec.augment.chain, rng_for(3, f"k/{i}")) for i in range(200)]
    assert draws[0] == draw_chain(spec.augment.chain, rng_for(3, "k/0"))
    semis = {d[0]["semitones"] for d in draws}
    assert semis == {-2, -1, 0, 1, 2}  # whole semitones, so keys stay keys
    assert all(0.8 <= d[1]["rate"] <= 1.25 for d in draws)
    assert {d[2]["colour"] for d in draws} == {"pink", "brown"} and all("seed" in d[2] for d in draws)
    assert all(len(d) == 3 for d in draws)  # p: 0 never applies


def test_the_cheaper_warp_preset_is_opt_in_and_a_spec_without_it_plans_as_before():
    """``preset: cheaper`` (29% less warp CPU, bench/warp.py) changes the audio but not the pitch; a spec that
    does not name it records nothing new, so datasets built before the setting keep their bytes."""
    from mixtape.spec import SpecError

    def chain(**extra):
        return parse_spec({"name": "a", "seed": 3, "sources": [{"kind": "folder", "path": "x"}], "augment": {
            "variants": 1, "chain": [{"op": "pitch_shift", "semitones": [2, 2], **extra}]}}).augment.chain

    assert dict(chain()[0].params) == {"semitones": (2, 2), "steps": "semitone"}
    assert dict(chain(preset="default")[0].params) == {"semitones": (2, 2), "steps": "semitone"}
    cheap = chain(preset="cheaper")
    step = draw_chain(cheap, rng_for(3, "k"))[0]
    assert step == {"op": "pitch_shift", "semitones": 2, "steps": "semitone", "preset": "cheaper"}
    default_out = apply_chain(tone(), SR, [{"op": "pitch_shift", "semitones": 2, "steps": "semitone"}])
    cheap_out = apply_chain(tone(), SR, [step])
    assert not np.array_equal(default_out, cheap_out)
    assert peak_hz(cheap_out) == pytest.approx(440 * 2 ** (2 / 12), rel=0.01)
    with pytest.raises(SpecError, match=r"chain\[0\]\.preset.*default, cheaper"):
        chain(preset="fastest")
