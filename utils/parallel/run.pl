#!/usr/bin/env python3
"""run.pl: run Kaldi-style jobs on this machine (a Python drop-in for Kaldi's run.pl).

Usage: run.pl [options] [JOB=1:N] <log-file> <command> ...
 e.g.: run.pl JOB=1:4 exp/log/featurize.JOB.log steps/featurize.py data/split4/JOB exp/feats/JOB
Options:
  --max-jobs-run N   at most N jobs at once (default: number of CPUs)
  --gpu N            jobs need a GPU: each job gets CUDA_VISIBLE_DEVICES set to one GPU, round
                     robin over the GPUs visible here, and at most one job runs per GPU
  --num-threads N, --mem M, --config F, --time T   accepted for compatibility; --num-threads is
                     recorded in the log's Accounting line
Exit status: 0 if every job succeeded, 1 otherwise (the failed jobs' logs are named).
"""

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from speech_reps.parallel import (LauncherError, command_string, log_footer, log_header,
                                  parse_job_args, report_failures, substitute)

PROG = "run.pl"


def parse_options(argv):
    opts = {"max_jobs_run": os.cpu_count() or 1, "gpu": 0, "num_threads": 1}
    while argv and argv[0].startswith("--"):
        if len(argv) < 2:
            raise LauncherError(f"option {argv[0]} needs a value")
        name, value = argv[0][2:].replace("-", "_"), argv[1]
        if name in ("max_jobs_run", "gpu", "num_threads"):
            opts[name] = int(value)
        elif name not in ("mem", "config", "time"):
            raise LauncherError(f"unknown option --{argv[0][2:]}")
        argv = argv[2:]
    return opts, argv


def visible_gpus():
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g for g in env.split(",") if g.strip()]
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return []
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU")]


def run_job(job, var, log_template, command, threads, gpu=None):
    log_path = substitute(log_template, var, job)
    os.makedirs(os.path.dirname(log_path) or ".", exist_ok=True)
    cmd = substitute(command, var, job)
    env = dict(os.environ)
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = gpu
    start = time.time()
    with open(log_path, "w") as log:
        log.write(log_header(cmd))
        log.flush()
        code = subprocess.run(["bash", "-c", cmd], stdout=log, stderr=subprocess.STDOUT, env=env).returncode
        log.write(log_footer(code, time.time() - start, threads))
    return job, code, log_path


def main(argv):
    try:
        opts, argv = parse_options(argv)
        var, first, last, log_template, words = parse_job_args(argv)
    except (LauncherError, ValueError) as e:
        print(f"{PROG}: {e}\n{__doc__}", file=sys.stderr)
        return 1
    command = command_string(words)
    jobs = list(range(first, last + 1))
    gpus = visible_gpus() if opts["gpu"] > 0 else []
    if opts["gpu"] > 0 and not gpus:
        print(f"{PROG}: --gpu {opts['gpu']}: no GPU visible (CUDA_VISIBLE_DEVICES / nvidia-smi)", file=sys.stderr)
        return 1
    workers = max(1, min(opts["max_jobs_run"], len(jobs), len(gpus) if gpus else len(jobs)))
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(
            lambda j: run_job(j, var, log_template, command, opts["num_threads"],
                              gpus[(j - first) % len(gpus)] if gpus else None), jobs))
    failed = [(job, f"code {code}", log) for job, code, log in results if code != 0]
    return report_failures(PROG, failed, len(jobs), sys.stderr)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
