#!/usr/bin/env python3
"""slurm.pl: run Kaldi-style jobs as one Slurm job array (a Python drop-in for Kaldi's slurm.pl).

Usage: slurm.pl [options] [JOB=1:N | JOB=n] [options] <log-file> <command> ...
 e.g.: slurm.pl --mem 4G --gpu 1 JOB=1:8 exp/log/featurize.JOB.log steps/featurize.py ... data/split8/JOB ...
The command line is read as Kaldi's slurm.pl reads it (options before or after JOB=..., JOB=n for
the single job n, "JOB" replaced everywhere in the log name and the command).
Options:
  --mem <size>          memory per job, e.g. 4G
  --num-threads <n>     CPUs per job
  --gpu <n>             GPUs per job
  --time <limit>        time limit per job
  --max-jobs-run <n>    at most n array tasks at once (also GridEngine's -tc <n>)
  --config <file>       Kaldi slurm.conf: "command sbatch ...", "option name=* args-with-$0",
                        "option name=value args", "default name=value" (default: conf/slurm.conf
                        in the current directory, as Kaldi's, else the toolkit's conf/slurm.conf)
  --<name> <value>      any other option the config has an "option name=..." line for
  -p gpu, -A account ...  any other single-dash option goes to sbatch as it is, as with Kaldi's
                        slurm.pl; GridEngine's -pe <env> <n> is read as --num-threads <n>, and
                        -V and -sync y are accepted and ignored (the config exports the
                        environment; slurm.pl always waits for the jobs)
Submits with sbatch --wait, so it returns when every task has ended; each task writes its log
with Kaldi's header and footer. Exit status 1 if any task failed (their logs are named); on
Ctrl-C (SIGINT) or SIGTERM it cancels the array (scancel) and exits 130 / 143.
"""

import os
import pwd
import re
import shlex
import signal
import subprocess
import sys
from pathlib import Path

# The launcher runs under any python3 (no virtual environment needed): the shared, stdlib-only
# modules are taken from the source tree this script belongs to.
_ROOT = Path(__file__).resolve().parents[2]
if (_ROOT / "speech_reps" / "parallel.py").is_file():
    sys.path.insert(0, str(_ROOT))

from speech_reps.conf_dir import default_conf  # noqa: E402
from speech_reps.parallel import (LauncherError, command_string, ended_with_code,  # noqa: E402
                                  parse_job_args, report_failures)

PROG = "slurm.pl"
USAGE = "Usage: slurm.pl [options] [JOB=1:N] <log-file> <command> ... (slurm.pl --help for more)"


def read_config(text, source):
    """(sbatch command words, {name: [(value or '*', args)]}, {name: default})."""
    command, options, defaults = None, {}, {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        kind, _, rest = line.partition(" ")
        if kind == "command":
            command = shlex.split(rest)
        elif kind in ("option", "default"):
            spec, _, args = rest.strip().partition(" ")
            name, eq, value = spec.partition("=")
            if not eq:
                raise LauncherError(f"{source}:{lineno}: expected {kind} name=value, got '{raw}'")
            if kind == "default":
                defaults[name] = value
            else:
                options.setdefault(name, []).append((value, args.strip()))
        else:
            raise LauncherError(f"{source}:{lineno}: unknown line '{raw}'")
    if command is None:
        raise LauncherError(f"{source}: no 'command' line")
    return command, options, defaults


def sbatch_args(options, given):
    """sbatch arguments for the given {name: value}, by the config's option lines."""
    args = []
    for name, value in given.items():
        rules = options.get(name)
        if rules is None:
            raise LauncherError(f"option --{name.replace('_', '-')} is not in the slurm config")
        exact = [a for v, a in rules if v == value]
        if exact:
            args += shlex.split(exact[0])
            continue
        wild = [a for v, a in rules if v == "*"]
        if not wild:
            raise LauncherError(f"--{name.replace('_', '-')} {value}: no matching option line in the slurm config")
        args += shlex.split(wild[0].replace("$0", value))
    return args


def parse_options(options):
    """({name: value} for the config, --config file or None, max jobs or None, raw sbatch args)."""
    given, config, max_jobs, raw = {}, None, None, []
    for switch, values in options:
        if switch in ("--max-jobs-run", "-tc"):
            if not (values[0].isdigit() and int(values[0]) > 0):
                raise LauncherError(f"invalid option {switch} {values[0]}")
            max_jobs = int(values[0])
        elif switch == "--config":
            config = values[0]
        elif switch.startswith("--"):
            given[switch[2:].replace("-", "_")] = values[0]
        elif switch == "-pe":
            given["num_threads"] = values[1]
        elif switch not in ("-V", "-sync"):
            raw += [switch] + values
    return given, config, max_jobs, raw


def config_file(config):
    if config is not None:
        if not os.access(config, os.R_OK):
            raise LauncherError(f"could not open config file {config}")
        return config
    local = Path("conf") / "slurm.conf"  # a recipe's own, as Kaldi's slurm.pl reads it
    return str(local) if local.is_file() else str(default_conf("slurm.conf"))


def task_script(command, var, log_template, threads):
    """The batch script: runs the command for task $SLURM_ARRAY_TASK_ID, writing Kaldi's log.
    JOB is replaced when the task runs, as plain text before bash reads the command, as run.pl does."""
    def for_task(name):
        return f'${{{name}//{var}/$TASK}}' if var else f"${name}"

    return f"""#!/usr/bin/env bash
cd {shlex.quote(os.getcwd())}
TASK=${{SLURM_ARRAY_TASK_ID:-1}}
log_template={shlex.quote(log_template)}
command_template={shlex.quote(command)}
log={for_task("log_template")}
cmd={for_task("command_template")}
mkdir -p "$(dirname "$log")"
{{ printf '# %s\\n' "$cmd"; echo "# Started at $(date)"; echo "#"; }} > "$log"
start=$(date +%s)
( eval "$cmd" ) < /dev/null >> "$log" 2>&1
ret=$?
elapsed=$(( $(date +%s) - start ))
echo "# Accounting: time=$elapsed threads={threads}" >> "$log"
echo "# Ended (code $ret) at $(date), elapsed time $elapsed seconds" >> "$log"
exit $ret
"""


def cancel(job_name):
    user = pwd.getpwuid(os.getuid()).pw_name
    try:
        subprocess.run(["scancel", f"--name={job_name}", f"--user={user}"], capture_output=True)
    except OSError as e:
        print(f"{PROG}: could not cancel the Slurm array {job_name}: {e}", file=sys.stderr)


class Interrupted(Exception):
    def __init__(self, signum):
        self.signum = signum


def main(argv):
    if argv[:1] in (["--help"], ["-h"]):  # asked for: on stdout, success
        print(__doc__)
        return 0
    try:
        args = parse_job_args(PROG, argv)
        given, config, max_jobs, raw = parse_options(args.options)
        config = config_file(config)
        command, options, defaults = read_config(Path(config).read_text(), config)
        sbatch = sbatch_args(options, {**defaults, **given})
    except (LauncherError, ValueError, OSError) as e:
        print(f"{PROG}: {e}\n{USAGE}", file=sys.stderr)
        return 1
    cmd = command_string(args.words)
    qdir = Path(os.path.dirname(args.log) or ".") / "q"
    qdir.mkdir(parents=True, exist_ok=True)
    base = re.sub(r"\W", "_", os.path.basename(args.log))
    script = qdir / f"{base}.sh"
    script.write_text(task_script(cmd, args.var, args.log, given.get("num_threads", 1)))
    job_name = f"{base}-{os.getpid()}"  # unique, so that an interrupted run cancels only its own array
    array = f"{args.first}-{args.last}" + (f"%{max_jobs}" if max_jobs else "")
    submit = command + sbatch + raw + ["--wait", f"--array={array}", f"--job-name={job_name}",
                                       f"--output={qdir}/{base}.%a.out", str(script)]

    def on_signal(signum, _frame):
        raise Interrupted(signum)

    for signum in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(signum) in (signal.SIG_DFL, signal.default_int_handler):
            signal.signal(signum, on_signal)
    proc = None
    try:
        proc = subprocess.Popen(submit, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = proc.communicate()
    except OSError as e:
        print(f"{PROG}: cannot run {submit[0]}: {e.strerror} (is Slurm installed here?)", file=sys.stderr)
        return 1
    except Interrupted as e:
        if proc is not None:  # stop sbatch first, so that it cannot submit after the scancel
            proc.terminate()
            proc.wait()
        cancel(job_name)
        print(f"{PROG}: interrupted ({signal.Signals(e.signum).name}): cancelled the Slurm array {job_name}; "
              f"logs: {args.log_pattern()}", file=sys.stderr)
        return 128 + e.signum
    if "Submitted batch job" not in out:  # sbatch --wait fails also when tasks fail
        print(f"{PROG}: {' '.join(submit)} failed: {err.strip()}", file=sys.stderr)
        return 1
    failed = []
    for job in args.jobs:
        log = args.log_for(job)
        code = ended_with_code(log)
        if code != 0:
            failed.append((job, "did not end" if code is None else f"code {code}", log))
    return report_failures(PROG, args, failed, sys.stderr)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
