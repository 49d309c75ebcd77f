"""Kaldi's job-launcher contract, shared by utils/parallel/run.pl and utils/parallel/slurm.pl:

    <launcher> [options] [JOB=1:N | JOB=n] [options] <log-file> <command> ...

The command line is read as Kaldi's run.pl/queue.pl/slurm.pl read it: options may come before and
after the job range; "-V" takes no value, "-pe <env> <n>" two, every other option one (so
GridEngine options such as "-l mem_free=2G" or "-q all.q" are accepted); "JOB=1:N" runs jobs 1..N,
"JOB=n" the single job n. Every occurrence of the variable ("JOB") in the log name and the
command is replaced by the job's number, as plain text, so "log/train_JOB.log" names
"log/train_3.log". A range of several jobs writing to a log name without the variable is refused.

Every log starts with "# <command>", "# Started at <date>", "#", and ends with
"# Accounting: time=<s> threads=<n>" and "# Ended (code <c>) at <date>, elapsed time <s> seconds"
("# Ended (code 0; signal <n>) ..." when the job was killed by a signal), as Kaldi's run.pl
writes them, so tools that read those logs (and run.pl --pick) work on ours.

This module imports only the standard library: the launchers run under any python3, without
the toolkit's virtual environment.
"""

import re
import sys
import time

_RANGE = re.compile(r"^(\w+)=(\d+):(\d+)$")
_SINGLE = re.compile(r"^(\w+)=(\d+)$")
_SUSPICIOUS = re.compile(r".+=.*:.*$")
_ENDED = re.compile(r"^# Ended \(code (\d+)(?:; signal (\d+))?\)", re.M)


class LauncherError(Exception):
    pass


class JobArgs:
    """A parsed launcher command line.

    options: [(switch, [values])] in the order given ("--mem", ["2G"]), ("-pe", ["smp", "4"]);
    var: the job variable ("JOB") or None; first, last: the job numbers; log: the log name as
    given; words: the command's words.
    """

    def __init__(self, options, var, first, last, log, words):
        self.options, self.var, self.first, self.last = options, var, first, last
        self.log, self.words = log, words

    @property
    def jobs(self):
        return range(self.first, self.last + 1)

    def log_for(self, job):
        return substitute(self.log, self.var, job)

    def log_pattern(self):
        """The log name with '*' for the job number, as Kaldi's launchers name failed logs."""
        return self.log if self.var is None else self.log.replace(self.var, "*")


def parse_job_args(prog, argv, warn=sys.stderr):
    """Read a launcher's command line as Kaldi's launchers do; raises LauncherError."""
    args, options = list(argv), []
    var, first, last = None, 1, 1
    progress = True
    while progress:  # the job range may sit between options, before or after them
        progress = False
        while len(args) >= 2 and args[0].startswith("-"):
            switch = args.pop(0)
            arity = 0 if switch == "-V" else 2 if switch == "-pe" else 1
            if len(args) < arity:
                raise LauncherError(f"option {switch} needs {arity} values")
            values, args = args[:arity], args[arity:]
            if values and values[0].startswith("--"):
                print(f"{prog}: WARNING: suspicious argument '{values[0]}' to {switch}; starts with '-'",
                      file=warn)
            options.append((switch, values))
            progress = True
        if not args:
            break
        m = _RANGE.match(args[0]) or _SINGLE.match(args[0])
        if m and var is None:
            var, first = m.group(1), int(m.group(2))
            last = int(m.group(3)) if m.re is _RANGE else first
            if m.re is _RANGE:
                if first > last:
                    raise LauncherError(f"invalid job range {args[0]}")
                if first <= 0:
                    raise LauncherError(f"invalid job range {args[0]}, start must be strictly positive "
                                        "(this is required for GridEngine compatibility)")
            args.pop(0)
            progress = True
    if var is None and args and _SUSPICIOUS.match(args[0]):  # a mistyped job range?
        print(f"{prog}: Warning: suspicious first argument to {prog}: {args[0]}", file=warn)
    if len(args) < 2:
        raise LauncherError("expected [options] [JOB=1:N] <log-file> <command> ...")
    log, words = args[0], args[1:]
    if var is not None and last > first and var not in log:
        raise LauncherError("you are trying to run a parallel job but you are putting the output "
                            f"into just one log file ({log})")
    return JobArgs(options, var, first, last, log, words)


def command_string(words):
    """The command as Kaldi's launchers rebuild it: a word without whitespace stays as it is
    (so '|' and '>' keep their shell meaning); one with a double quote is put in single
    quotes; any other in double quotes."""
    def quote(w):
        if w and not re.search(r"\s", w):
            return w
        return f"'{w}'" if '"' in w else f'"{w}"'

    return " ".join(quote(w) for w in words)


def substitute(text, var, job):
    """Kaldi's rule: every occurrence of the job variable, inside words too, is the job number."""
    return text if var is None else text.replace(var, str(job))


def _date():
    """The time as `date` prints it in the C locale, as in Kaldi's logs."""
    return time.strftime("%a %b %e %H:%M:%S %Z %Y")


def log_header(command):
    return f"# {command}\n# Started at {_date()}\n#\n"


def end_status(returncode):
    """Kaldi's "code N" / "code N; signal S" for a subprocess return code (-S: killed by S)."""
    return f"code 0; signal {-returncode}" if returncode < 0 else f"code {returncode}"


def log_footer(returncode, elapsed, threads=1):
    seconds = int(round(elapsed))
    return (f"# Accounting: time={seconds} threads={threads}\n"
            f"# Ended ({end_status(returncode)}) at {_date()}, elapsed time {seconds} seconds\n")


def ended_with_code(log_path):
    """The status a launcher log records (the code, or -signal), or None if the job did not end."""
    try:
        with open(log_path, encoding="utf-8", errors="replace") as f:
            tail = f.read()[-4096:]
    except OSError:
        return None
    found = _ENDED.findall(tail)
    if not found:
        return None
    code, signal = found[-1]
    return -int(signal) if signal else int(code)


def report_failures(prog, job_args, failed, stream):
    """Name each failed job [(job, reason, log)] and Kaldi's summary line; returns the exit code."""
    if not failed:
        return 0
    total = len(job_args.jobs)
    for job, reason, log in failed:
        name = f"job {job}" if job_args.var is not None else "job"
        print(f"{prog}: {name} failed ({reason}), log is in {log}", file=stream)
    if total > 1:
        print(f"{prog}: {len(failed)} / {total} failed, log is in {job_args.log_pattern()}", file=stream)
    elif "JOB" in failed[0][2]:
        print(f"{prog}: probably you forgot to put JOB=1:$nj in your script.", file=stream)
    return 1
