"""The options of Kaldi's compute-fbank-feats and compute-mfcc-feats, with Kaldi's defaults.

One table says, for every option either program accepts, its Kaldi default, where it goes in
kaldi-native-fbank (``knf``), and whether the native backend can honour it. Defaults are
Kaldi's, never kaldi-native-fbank's (whose dither default is 3e-5, Kaldi's is 1.0).
"""

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
