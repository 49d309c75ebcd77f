#!/usr/bin/env python3
"""slurm.pl: run Kaldi-style jobs as one Slurm job array (a Python drop-in for Kaldi's slurm.pl).

Usage: slurm.pl [options] [JOB=1:N] <log-file> <command> ...
 e.g.: slurm.pl --mem 4G --gpu 1 JOB=1:8 exp/log/featurize.JOB.log steps/featurize.py ... data/split8/JOB ...
Options:
  --mem <size>          memory per job, e.g. 4G
  --num-threads <n>     CPUs per job
  --gpu <n>             GPUs per job
  --time <limit>        time limit per job
  --max-jobs-run <n>    at most n array tasks at once
  --config <file>       Kaldi slurm.conf: "command sbatch ...", "option name=* args-with-$0",
                        "option name=value args", "default name=value" (default: the toolkit's conf/slurm.conf)
Submits with sbatch --wait, so it returns when every task has ended; each task writes its log
with Kaldi's header and footer. Exit status 1 if any task failed (their logs are named).
"""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

from speech_reps.conf_dir import default_conf
from speech_reps.parallel import (LauncherError, command_string, ended_with_code, parse_job_args,
                                  report_failures, substitute)

PROG = "slurm.pl"


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


def parse_options(argv):
    given, config, max_jobs = {}, None, None
    while argv and argv[0].startswith("--"):
        if len(argv) < 2:
            raise LauncherError(f"option {argv[0]} needs a value")
        name, value = argv[0][2:].replace("-", "_"), argv[1]
        if name == "config":
            config = value
        elif name == "max_jobs_run":
            max_jobs = int(value)
        else:
            given[name] = value
        argv = argv[2:]
    return given, config, max_jobs, argv


def task_script(command, var, log_template, threads):
    """The batch script: runs the command for task $SLURM_ARRAY_TASK_ID, writing Kaldi's log."""
    def for_task(text):  # JOB -> the task id, expanded by bash when the task runs
        return text if var is None else re.sub(rf"\b{re.escape(var)}\b", "${TASK}", text)

    return f"""#!/usr/bin/env bash
cd {shlex.quote(os.getcwd())}
TASK=${{SLURM_ARRAY_TASK_ID:-1}}
log="{for_task(log_template)}"
raw={shlex.quote(command)}
mkdir -p "$(dirname "$log")"
{{ printf '# %s\\n' "{'${raw//' + var + '/$TASK}' if var else '$raw'}"; echo "# Started at $(date)"; echo "#"; }} > "$log"
start=$(date +%s)
( {for_task(command)} ) >> "$log" 2>&1
ret=$?
elapsed=$(( $(date +%s) - start ))
echo "# Accounting: time=$elapsed threads={threads}" >> "$log"
echo "# Ended (code $ret) at $(date), elapsed time $elapsed seconds" >> "$log"
exit $ret
"""


def main(argv):
    try:
        given, config, max_jobs, argv = parse_options(argv)
        var, first, last, log_template, words = parse_job_args(argv)
        config = config or default_conf("slurm.conf")
        command, options, defaults = read_config(Path(config).read_text(), config)
        args = sbatch_args(options, {**defaults, **given})
    except (LauncherError, ValueError, OSError) as e:
        print(f"{PROG}: {e}\n{__doc__}", file=sys.stderr)
        return 1
    cmd = command_string(words)
    qdir = Path(os.path.dirname(log_template) or ".") / "q"
    qdir.mkdir(parents=True, exist_ok=True)
    base = re.sub(r"\W", "_", os.path.basename(log_template))
    script = qdir / f"{base}.sh"
    script.write_text(task_script(cmd, var, log_template, given.get("num_threads", 1)))
    array = f"{first}-{last}" + (f"%{max_jobs}" if max_jobs else "")
    submit = command + args + ["--wait", f"--array={array}", f"--job-name={base}",
                               f"--output={qdir}/{base}.%a.out", str(script)]
    proc = subprocess.run(submit, capture_output=True, text=True)
    if "Submitted batch job" not in proc.stdout:  # sbatch --wait fails also when tasks fail
        print(f"{PROG}: {' '.join(submit)} failed: {proc.stderr.strip()}", file=sys.stderr)
        return 1
    failed = []
    for job in range(first, last + 1):
        log = substitute(log_template, var, job)
        code = ended_with_code(log)
        if code != 0:
            failed.append((job, "did not end" if code is None else f"code {code}", log))
    return report_failures(PROG, failed, last - first + 1, sys.stderr)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
