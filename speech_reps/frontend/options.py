"""The options of Kaldi's compute-fbank-feats and compute-mfcc-feats, with Kaldi's defaults.

One table says, for every option either program accepts, its Kaldi default, where it goes in
kaldi-native-fbank (``knf``), and whether the native backend can honour it. Defaults are
Kaldi's, never kaldi-native-fbank's (whose dither default is 3e-5, Kaldi's is 1.0).
"""

import bisect
import math
from dataclasses import dataclass

from speech_reps.errors import ConfigError
from speech_reps.kaldi.options import OptionLine, format_value, read_option_file, to_bool, to_number

WINDOW_TYPES = ("hamming", "hanning", "povey", "rectangular", "sine", "blackman")
KINDS = ("fbank", "mfcc")
PROGRAMS = {"fbank": "compute-fbank-feats", "mfcc": "compute-mfcc-feats"}


@dataclass(frozen=True)
class KaldiOption:
    name: str
    default: object
    knf: str = None  # attribute on knf.FbankOptions / MfccOptions; None: speech-reps handles it
    native: bool = True  # False: only the default value works without --fbank-backend kaldi
    kinds: tuple = KINDS


_O = KaldiOption
# FrameExtractionOptions (feature-window.h)
_FRAME = [
    _O("sample-frequency", 16000.0, "frame_opts.samp_freq"),
    _O("frame-shift", 10.0, "frame_opts.frame_shift_ms"),
    _O("frame-length", 25.0, "frame_opts.frame_length_ms"),
    _O("dither", 1.0, "frame_opts.dither"),
    _O("preemphasis-coefficient", 0.97, "frame_opts.preemph_coeff"),
    _O("remove-dc-offset", True, "frame_opts.remove_dc_offset"),
    _O("window-type", "povey", "frame_opts.window_type"),
    _O("round-to-power-of-two", True, "frame_opts.round_to_power_of_two"),
    _O("blackman-coeff", 0.42, "frame_opts.blackman_coeff"),
    _O("snip-edges", True, "frame_opts.snip_edges"),
    _O("allow-downsample", False),  # honoured by the audio loader (resampling)
    _O("allow-upsample", False),
    _O("max-feature-vectors", -1),  # bounds memory of Kaldi's online features; no effect offline
]
# MelBanksOptions (mel-computations.h)
_MEL = [
    _O("num-mel-bins", 23, "mel_opts.num_bins"),
    _O("low-freq", 20.0, "mel_opts.low_freq"),
    _O("high-freq", 0.0, "mel_opts.high_freq"),
    _O("vtln-low", 100.0, "mel_opts.vtln_low"),
    _O("vtln-high", -500.0, "mel_opts.vtln_high"),
    _O("debug-mel", False, "mel_opts.debug_mel"),
]
# FbankOptions (feature-fbank.h) and MfccOptions (feature-mfcc.h)
_FBANK = [
    _O("use-energy", False, "use_energy", kinds=("fbank",)),
    _O("energy-floor", 0.0, "energy_floor"),
    _O("raw-energy", True, "raw_energy"),
    _O("htk-compat", False, "htk_compat"),
    _O("use-log-fbank", True, "use_log_fbank", kinds=("fbank",)),
    _O("use-power", True, "use_power", kinds=("fbank",)),
]
_MFCC = [
    _O("num-ceps", 13, "num_ceps", kinds=("mfcc",)),
    _O("cepstral-lifter", 22.0, "cepstral_lifter", kinds=("mfcc",)),
]
# Options of the programs themselves (compute-fbank-feats.cc, compute-mfcc-feats.cc)
_PROGRAM = [
    _O("subtract-mean", False),
    _O("channel", -1),
    _O("min-duration", 0.0),
    _O("vtln-warp", 1.0, native=False),
    _O("vtln-map", "", native=False),
    _O("utt2spk", "", native=False),
    _O("output-format", "kaldi", native=False),
    _O("write-utt2dur", "", native=False),
    _O("verbose", 0),
]
_MFCC_USE_ENERGY = _O("use-energy", True, "use_energy", kinds=("mfcc",))

TABLE = {
    kind: {
        o.name: o
        for o in _FRAME + _MEL + _FBANK + _MFCC + _PROGRAM + [_MFCC_USE_ENERGY]
        if kind in o.kinds
    }
    for kind in KINDS
}


_MAX_WINDOW = 1 << 22  # samples in one frame
_MAX_MS = 10000.0  # longest frame length or shift accepted (a window of seconds is a mistake)
# (option, test of its value, the cause when it fails): Kaldi's own checks, and what keeps sizes sane
_RANGES = [
    ("sample-frequency", lambda x: x > 0, "must be > 0"),
    ("frame-shift", lambda x: 0 < x <= _MAX_MS, f"must be > 0 and at most {_MAX_MS:g} ms"),
    ("frame-length", lambda x: 0 < x <= _MAX_MS, f"must be > 0 and at most {_MAX_MS:g} ms"),
    ("dither", lambda x: 0 <= x <= 32768, "must be between 0 (no dither) and 32768 (int16 scale)"),
    ("blackman-coeff", lambda x: abs(x) <= 1000, "must be between -1000 and 1000"),
    ("cepstral-lifter", lambda x: abs(x) <= 1000, "must be between -1000 and 1000 (0: no liftering)"),
    ("energy-floor", lambda x: 0 <= x <= 1e30, "must be between 0 (no floor) and 1e30"),
    ("preemphasis-coefficient", lambda x: 0 <= x <= 1, "must be between 0 and 1"),
    ("num-mel-bins", lambda x: 3 <= x <= 10000, "must be at least 3 (and at most 10000)"),
    ("num-ceps", lambda x: x >= 1, "must be at least 1"),
    ("min-duration", lambda x: x >= 0, "must be >= 0"),
    ("channel", lambda x: x >= -1, "must be -1 (mono audio) or a channel index from 0"),
    ("vtln-warp", lambda x: x > 0, "must be > 0"),
]


def mel(freq):
    return 1127.0 * math.log(1.0 + freq / 700.0)


def _first_empty_mel_bin(num_bins, low, high, sample_rate, fft_size):
    """The first mel bin (from 0) whose triangle covers no FFT bin centre, as Kaldi's MelBanks
    asserts ("You may have set --num-mel-bins too large"); None if every bin gets one."""
    mel_low, mel_high = mel(low), mel(high)
    delta = (mel_high - mel_low) / (num_bins + 1)
    centres = [mel(i * sample_rate / fft_size) for i in range(fft_size // 2)]  # ascending
    for b in range(num_bins):
        left, right = mel_low + b * delta, mel_low + (b + 2) * delta
        i = bisect.bisect_right(centres, left)
        if i == len(centres) or centres[i] >= right:
            return b
    return None


def _convert(option: OptionLine, default):
    if isinstance(default, bool):
        return to_bool(option)
    if isinstance(default, (int, float)):
        return to_number(option, type(default))
    return option.value


class FeatureOptions:
    """The complete option set of one Kaldi feature program (fbank or mfcc).

    ``values`` holds every option (Kaldi defaults filled in); ``given`` the ones a file or
    override set, so the conf we record lists them.
    """

    def __init__(self, kind, given=None):
        if kind not in KINDS:
            raise ConfigError(f"unknown feature type '{kind}' (expected one of {', '.join(KINDS)})")
        self.kind = kind
        table = TABLE[kind]
        self.values = {name: o.default for name, o in table.items()}
        self.given = {}
        for name, line in (given or {}).items():
            if name not in table:
                other = [k for k in KINDS if name in TABLE[k]]
                hint = f" (it is an option of {PROGRAMS[other[0]]})" if other else ""
                raise ConfigError(f"{line.source}: unknown option --{name} for {PROGRAMS[kind]}{hint}")
            self.values[name] = _convert(line, table[name].default)
            self.given[name] = line
        window = self.values["window-type"]
        if window not in WINDOW_TYPES:
            raise ConfigError(
                f"{self.given['window-type'].source}: --window-type={window}: "
                f"expected one of {', '.join(WINDOW_TYPES)}"
            )
        if self.values["output-format"] not in ("kaldi", "htk"):
            raise ConfigError(f"{self.given['output-format'].source}: --output-format must be kaldi or htk")
        self._check_numbers()

    # --- validation: a value that makes the front end impossible is an error before any work ----
    def _fail(self, names, cause):
        """A ConfigError naming where the first of ``names`` that was set came from."""
        for name in names:
            if name in self.given:
                line = self.given[name]
                raise ConfigError(f"{line.source}: --{name}={line.value}: {cause}")
        raise ConfigError(f"--{names[0]}={format_value(self.values[names[0]])} (Kaldi's default): {cause}")

    def _check_numbers(self):
        v = self.values
        for name, value in v.items():
            if isinstance(value, float) and not math.isfinite(value):
                self._fail([name], "must be a finite number")
        for name, ok, cause in _RANGES:
            if name in v and not ok(v[name]):
                self._fail([name], cause)
        if self.window_shift < 1:
            self._fail(["frame-shift", "sample-frequency"], "the frame shift is less than one sample "
                       f"at {v['sample-frequency']:g} Hz")
        if self.window_size > _MAX_WINDOW:
            self._fail(["frame-length", "sample-frequency"], f"a frame of {self.window_size} samples; "
                       f"at most {_MAX_WINDOW} are accepted")
        if self.window_size < 2:
            self._fail(["frame-length", "sample-frequency"], "the frame is shorter than two samples "
                       f"at {v['sample-frequency']:g} Hz")
        nyquist = 0.5 * v["sample-frequency"]
        low, high = v["low-freq"], v["high-freq"] if v["high-freq"] > 0 else nyquist + v["high-freq"]
        if not (0 <= low < nyquist and 0 < high <= nyquist and low < high):  # MelBanks' check
            self._fail(["high-freq", "low-freq", "sample-frequency"],
                       f"the mel banks need 0 <= low-freq < high-freq <= Nyquist; low-freq {low:g} Hz, "
                       f"high-freq {high:g} Hz (--high-freq <= 0 counts from Nyquist), Nyquist {nyquist:g} Hz")
        if v["vtln-warp"] != 1.0:
            vtln_low, vtln_high = v["vtln-low"], v["vtln-high"] + (nyquist if v["vtln-high"] < 0 else 0)
            if not (low < vtln_low < high and vtln_low < vtln_high < high):
                self._fail(["vtln-low", "vtln-high", "vtln-warp"],
                           f"with --vtln-warp, need low-freq < vtln-low < vtln-high < high-freq; "
                           f"vtln-low {vtln_low:g} Hz, vtln-high {vtln_high:g} Hz")
        empty = _first_empty_mel_bin(v["num-mel-bins"], low, high, v["sample-frequency"], self.padded_window_size)
        if empty is not None:
            self._fail(["num-mel-bins", "low-freq", "high-freq", "frame-length"],
                       f"mel bin {empty} of {v['num-mel-bins']} gets no FFT bin (the {self.padded_window_size}-"
                       f"point FFT is too coarse for so many bins between {low:g} and {high:g} Hz); use fewer bins "
                       "or a longer frame")
        if self.kind == "mfcc" and v["num-ceps"] > v["num-mel-bins"]:
            self._fail(["num-ceps", "num-mel-bins"], f"more cepstra than mel bins ({v['num-mel-bins']})")

    @property
    def padded_window_size(self) -> int:
        size = self.window_size
        return 1 << (size - 1).bit_length() if self.values["round-to-power-of-two"] else size

    @classmethod
    def from_file(cls, kind, path, overrides=None, defaults=None, source="override"):
        """Options from a Kaldi option file over ``defaults``, with ``overrides`` on top
        (both {name: value}; ``source`` names where they came from in error messages)."""
        given = {n: OptionLine(n, format_value(v), source) for n, v in (defaults or {}).items()}
        given.update(read_option_file(path) if path is not None else {})
        for name, value in (overrides or {}).items():
            given[name] = OptionLine(name, format_value(value), source)
        return cls(kind, given)

    def __getitem__(self, name):
        return self.values[name]

    def unsupported_natively(self):
        """Options set to something only the real Kaldi binaries can do, as '--name=value'."""
        table = TABLE[self.kind]
        return [
            f"--{n}={format_value(v)}"
            for n, v in self.values.items()
            if not table[n].native and v != table[n].default
        ]

    # --- frame arithmetic (feature-window.cc) -------------------------------------------
    @property
    def sample_rate(self) -> int:
        return int(self.values["sample-frequency"])

    @property
    def window_size(self) -> int:
        return int(self.values["sample-frequency"] * 0.001 * self.values["frame-length"])

    @property
    def window_shift(self) -> int:
        return int(self.values["sample-frequency"] * 0.001 * self.values["frame-shift"])

    @property
    def frame_shift_seconds(self) -> float:
        return self.values["frame-shift"] / 1000.0

    def num_frames(self, num_samples: int) -> int:
        """Kaldi's NumFrames(num_samples, opts, flush=true)."""
        size, shift = self.window_size, self.window_shift
        if self.values["snip-edges"]:
            return 0 if num_samples < size else 1 + (num_samples - size) // shift
        return (num_samples + shift // 2) // shift

    @property
    def dim(self) -> int:
        if self.kind == "mfcc":
            return self.values["num-ceps"]
        return self.values["num-mel-bins"] + (1 if self.values["use-energy"] else 0)

    # --- writing -------------------------------------------------------------------------
    def feature_options(self):
        """(name, value) of the options that shape the features, for Kaldi's --config."""
        return [(n, v) for n, v in self.values.items() if TABLE[self.kind][n].knf is not None]

    def to_conf_text(self, header=None) -> str:
        """Every feature option, Kaldi format: the exact record of what was computed."""
        lines = [f"# {header}"] if header else []
        lines += [f"--{n}={format_value(v)}" for n, v in self.feature_options()]
        lines += [
            f"--{n}={format_value(v)}"
            for n, v in self.values.items()
            if TABLE[self.kind][n].knf is None and n in self.given
        ]
        return "\n".join(lines) + "\n"

    def to_knf(self):
        """kaldi-native-fbank options with every field set from Kaldi's value."""
        import kaldi_native_fbank as knf

        opts = knf.FbankOptions() if self.kind == "fbank" else knf.MfccOptions()
        for name, value in self.feature_options():
            target = opts
            *parents, attr = TABLE[self.kind][name].knf.split(".")
            for p in parents:
                target = getattr(target, p)
            setattr(target, attr, value)
        return opts
