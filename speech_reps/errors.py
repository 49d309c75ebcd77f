"""Error types. Each message is one line that names the file, the line or key, and the cause."""


class SpeechRepsError(Exception):
    """Base class: an error the user can act on (bad input, bad option), not a bug."""


class DataDirError(SpeechRepsError):
    """A Kaldi data dir is malformed. ``problems`` holds one line per problem found."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class ConfigError(SpeechRepsError):
    """A Kaldi option file or a model config holds an unknown or invalid option."""


def one_line(text):
    """``text`` as one printable line: its lines joined by "; ", control characters escaped. A
    cause may quote what a library or a command said (several lines, or the bytes it choked on),
    and it goes where one line is one record: the log, the failed table, the journal."""
    text = "; ".join(line.strip() for line in str(text).splitlines() if line.strip())
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


class AudioError(SpeechRepsError):
    """One utterance's audio cannot be read or does not fit the front end; ``cause`` one line."""

    def __init__(self, utt, source, cause):
        self.utt, self.source, self.cause = utt, source, one_line(cause)
        super().__init__(f"utterance {utt} ({source}): {self.cause}")


class LoaderError(SpeechRepsError):
    """A loader worker process died (killed, out of memory): the job stops, what it finished is
    kept for a resume."""
