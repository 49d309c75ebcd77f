"""Kaldi's job-launcher contract, shared by utils/parallel/run.pl (and the cluster launchers):

    <launcher> [options] [JOB=1:N] <log-file> <command> ...

"JOB" in the log name and the command is replaced by each job's number. Every log starts with
"# <command>" and "# Started at <date>", and ends with "# Accounting: time=<s> threads=<n>" and
"# Ended (code <c>) at <date>, elapsed time <s> seconds", exactly as Kaldi's launchers write them,
so tools that read those logs work on ours. The launcher exits non-zero if any job failed.
"""

import re
import time

_JOB_RANGE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(\d+):(\d+)$")


class LauncherError(Exception):
    pass


def parse_job_args(args):
    """(job variable or None, first, last, log template, command words) from launcher args."""
    if not args:
        raise LauncherError("no log file and command given")
    m = _JOB_RANGE.match(args[0])
    if m:
        var, first, last = m.group(1), int(m.group(2)), int(m.group(3))
        if first > last or first < 0:
            raise LauncherError(f"invalid job range {args[0]}")
        args = args[1:]
    else:
        var, first, last = None, 1, 1
    if len(args) < 2:
        raise LauncherError("expected <log-file> <command> ...")
    return var, first, last, args[0], args[1:]


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
    return text if var is None else re.sub(rf"\b{re.escape(var)}\b", str(job), text)


def log_header(command):
    return f"# {command}\n# Started at {time.strftime('%c')}\n#\n"


def log_footer(code, elapsed, threads=1):
    return (f"# Accounting: time={int(round(elapsed))} threads={threads}\n"
            f"# Ended (code {code}) at {time.strftime('%c')}, elapsed time {int(round(elapsed))} seconds\n")


def ended_with_code(log_path):
    """The exit code a launcher log records, or None if the job did not end."""
    try:
        with open(log_path, encoding="utf-8", errors="replace") as f:
            tail = f.read()[-4096:]
    except OSError:
        return None
    found = re.findall(r"^# Ended \(code (-?\d+)\)", tail, flags=re.M)
    return int(found[-1]) if found else None


def report_failures(prog, failed, total, stream):
    """Name each failed job [(job, reason, log)] as Kaldi's launchers do; returns the exit code."""
    for job, reason, log in failed:
        print(f"{prog}: job {job} failed ({reason}), log is in {log}", file=stream)
    if failed:
        print(f"{prog}: {len(failed)} / {total} failed", file=stream)
    return 1 if failed else 0
