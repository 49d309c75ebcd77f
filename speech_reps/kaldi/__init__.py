"""Kaldi data dirs in, Kaldi ark/scp out.

Public API: DataDir, Utterance (data dir model + validation), AudioLoader (audio at int16
scale), FeatureWriter (atomic ark/scp), write_output_data_dir, read_option_file.
"""

from speech_reps.kaldi.audio import AudioLoader
from speech_reps.kaldi.datadir import DataDir, Utterance
from speech_reps.kaldi.options import read_option_file
from speech_reps.kaldi.output_dir import write_output_data_dir
from speech_reps.kaldi.writer import FeatureWriter

__all__ = ["AudioLoader", "DataDir", "FeatureWriter", "Utterance", "read_option_file",
           "write_output_data_dir"]
