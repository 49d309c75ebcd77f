"""Kaldi option files parsed into kaldi-native-fbank options with Kaldi's defaults."""

import pytest

from conftest import write_conf
from speech_reps.errors import ConfigError
from speech_reps.frontend import FeatureOptions, FrontEnd, FrontEndSpec
from speech_reps.kaldi.options import read_option_file


def test_option_file_syntax(tmp_path):
    conf = write_conf(tmp_path / "a.conf", "# a comment line", "", "--num-mel-bins=40  # trailing",
                      "--snip_edges=false", "--use-energy", "--num-mel-bins=64")
    opts = read_option_file(conf)
    assert opts["num-mel-bins"].value == "64"  # the later line wins, as in Kaldi
    assert opts["snip-edges"].value == "false"  # '_' reads as '-'
    assert opts["use-energy"].value == "true"  # a bare flag means true
    assert opts["num-mel-bins"].source == f"{conf}:6"


def test_kaldi_defaults_not_knf_defaults():
    knf = FeatureOptions("fbank").to_knf()
    assert knf.frame_opts.dither == 1.0  # kaldi-native-fbank's own default is 3e-5
    assert knf.mel_opts.num_bins == 23 and knf.mel_opts.low_freq == 20
    assert FeatureOptions("mfcc").to_knf().use_energy is True
    assert FeatureOptions("fbank").to_knf().use_energy is False


def test_every_option_reaches_knf(tmp_path):
    conf = write_conf(tmp_path / "f.conf", "--sample-frequency=8000", "--frame-shift=12.5",
                      "--frame-length=30", "--dither=0.5", "--preemphasis-coefficient=0.9",
                      "--remove-dc-offset=false", "--window-type=hamming", "--round-to-power-of-two=false",
                      "--blackman-coeff=0.4", "--snip-edges=false", "--num-mel-bins=30", "--low-freq=40",
                      "--high-freq=-200", "--vtln-low=120", "--vtln-high=-400", "--use-energy=true",
                      "--energy-floor=1", "--raw-energy=false", "--htk-compat=true",
                      "--use-log-fbank=false", "--use-power=false")
    options = FeatureOptions.from_file("fbank", conf)
    knf = options.to_knf()
    f, m = knf.frame_opts, knf.mel_opts
    assert (f.samp_freq, f.frame_shift_ms, f.frame_length_ms, f.dither) == (8000, 12.5, 30, 0.5)
    assert (f.preemph_coeff, f.remove_dc_offset, f.window_type) == (pytest.approx(0.9), False, "hamming")
    assert (f.round_to_power_of_two, f.blackman_coeff, f.snip_edges) == (False, pytest.approx(0.4), False)
    assert (m.num_bins, m.low_freq, m.high_freq, m.vtln_low, m.vtln_high) == (30, 40, -200, 120, -400)
    assert (knf.use_energy, knf.energy_floor, knf.raw_energy, knf.htk_compat) == (True, 1, False, True)
    assert (knf.use_log_fbank, knf.use_power) == (False, False)
    assert options.dim == 31 and options.window_size == 240 and options.window_shift == 100


def test_mfcc_options(tmp_path):
    conf = write_conf(tmp_path / "m.conf", "--num-ceps=20", "--cepstral-lifter=0", "--num-mel-bins=40")
    options = FeatureOptions.from_file("mfcc", conf)
    knf = options.to_knf()
    assert (knf.num_ceps, knf.cepstral_lifter, knf.mel_opts.num_bins) == (20, 0, 40)
    assert options.dim == 20


def test_unknown_option_is_an_error_naming_file_and_line(tmp_path):
    conf = write_conf(tmp_path / "bad.conf", "--num-mel-bins=40", "--num-mel-bin=80")
    with pytest.raises(ConfigError, match=r"bad\.conf:2: unknown option --num-mel-bin for compute-fbank-feats"):
        FeatureOptions.from_file("fbank", conf)


def test_option_of_the_other_program_is_named(tmp_path):
    conf = write_conf(tmp_path / "f.conf", "--num-ceps=13")
    with pytest.raises(ConfigError, match="it is an option of compute-mfcc-feats"):
        FeatureOptions.from_file("fbank", conf)


@pytest.mark.parametrize("line,message", [
    ("--snip-edges=maybe", "expected true or false"),
    ("--num-mel-bins=forty", "expected int"),
    ("--window-type=kaiser", "expected one of hamming"),
    ("num-mel-bins=40", "expected --name=value"),
])
def test_bad_values(tmp_path, line, message):
    conf = write_conf(tmp_path / "f.conf", line)
    with pytest.raises(ConfigError, match=message):
        FeatureOptions.from_file("fbank", conf)


def test_kaldi_only_option_needs_kaldi_backend(tmp_path):
    conf = write_conf(tmp_path / "f.conf", "--vtln-warp=0.9")
    for backend in ("numpy", "native", "torch"):
        spec = FrontEndSpec(FeatureOptions.from_file("fbank", conf), backend=backend)
        with pytest.raises(ConfigError, match=f"--vtln-warp=0.9: not supported by the {backend} front end"):
            FrontEnd(spec)


def test_kaldi_backend_without_binaries_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ConfigError, match="compute-fbank-feats is not on PATH; set KALDI_ROOT"):
        FrontEnd(FrontEndSpec(FeatureOptions("fbank"), backend="kaldi"))


def test_recorded_conf_reads_back_identically(tmp_path):
    conf = write_conf(tmp_path / "f.conf", "--num-mel-bins=64", "--dither=0", "--preemphasis-coefficient=0.123456789")
    options = FeatureOptions.from_file("fbank", conf)
    recorded = tmp_path / "recorded.conf"
    recorded.write_text(options.to_conf_text("header"))
    again = FeatureOptions.from_file("fbank", recorded)
    assert again.values == options.values


@pytest.mark.parametrize("kind,lines,message", [
    ("fbank", ["--frame-shift=0"], "f.conf:1: --frame-shift=0: must be > 0 and at most 10000 ms"),
    ("fbank", ["--dither=0", "--preemphasis-coefficient=nan"], "f.conf:2: --preemphasis-coefficient=nan: must be a finite number"),
    ("fbank", ["--num-mel-bins=2"], "f.conf:1: --num-mel-bins=2: must be at least 3"),
    ("fbank", ["--num-mel-bins=127"], "f.conf:1: --num-mel-bins=127: mel bin 3 of 127 gets no FFT bin (the 512-point FFT"),
    ("fbank", ["--high-freq=9000"], "f.conf:1: --high-freq=9000: the mel banks need 0 <= low-freq < high-freq <= Nyquist"),
    ("fbank", ["--low-freq=8000"], "f.conf:1: --low-freq=8000: the mel banks need"),
    ("fbank", ["--frame-length=0.1"], "f.conf:1: --frame-length=0.1: the frame is shorter than two samples at 16000 Hz"),
    ("fbank", ["--energy-floor=inf"], "f.conf:1: --energy-floor=inf: must be a finite number"),
    ("mfcc", ["--num-ceps=40"], "f.conf:1: --num-ceps=40: more cepstra than mel bins (23)"),
    ("fbank", ["--channel=-2"], "f.conf:1: --channel=-2: must be -1 (mono audio) or a channel index from 0"),
])
def test_numbers_that_make_the_front_end_impossible_are_fatal(tmp_path, kind, lines, message):
    conf = write_conf(tmp_path / "f.conf", *lines)
    with pytest.raises(ConfigError) as e:
        FeatureOptions.from_file(kind, conf)
    assert str(e.value).startswith(f"{conf}:") and message in str(e.value)


def test_mel_bin_limit_is_kaldi_native_fbanks(tmp_path):
    """126 bins fit a 25 ms frame's 512-point FFT at 16 kHz; knf refuses 127, and so do we."""
    import kaldi_native_fbank as knf

    FeatureOptions.from_file("fbank", write_conf(tmp_path / "ok.conf", "--num-mel-bins=126"))
    opts = knf.FbankOptions()
    opts.mel_opts.num_bins = 127
    with pytest.raises(Exception, match="num_mel_bins too large"):
        knf.OnlineFbank(opts).accept_waveform(16000, [0.0] * 16000)


def test_option_file_not_utf8(tmp_path):
    (tmp_path / "f.conf").write_bytes(b"--dither=0\n--num-mel-bins=80 # \xff\n")
    with pytest.raises(ConfigError, match=r"f.conf:2: not UTF-8 \(byte 0xff at column 21\)"):
        FeatureOptions.from_file("fbank", tmp_path / "f.conf")
