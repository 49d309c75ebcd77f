#!/usr/bin/env python3
"""run.pl: run Kaldi-style jobs on this machine (a Python drop-in for Kaldi's utils/parallel/run.pl).

Usage: run.pl [options] [JOB=1:N | JOB=n] [options] <log-file> <command> ...
 e.g.: run.pl JOB=1:4 exp/log/featurize.JOB.log steps/featurize.py data/split4/JOB exp/feats/JOB
Runs the command once per job through bash, stdout and stderr into the job's log ("JOB" in the log
name and the command, even inside a word, is the job's number); JOB=n runs the single job n.
Options (before or after JOB=...):
  --max-jobs-run N, -tc N  at most N jobs at once (default: the number of CPUs; the smallest given wins)
  --gpu N                  N > 0: each job gets CUDA_VISIBLE_DEVICES set to one GPU, round robin
                           over the GPUs visible here, and at most one job runs per GPU
  --pick all|failed|incomplete   rerun all jobs (default), or only those whose log does not end
                           with code 0, or only those that did not end (a failed one stays failed)
  --num-threads N, -pe <env> N   recorded in the log's Accounting line
  Every other option is ignored, as Kaldi's run.pl ignores queue.pl's: --mem 2G, --config F,
  --time T, -l mem_free=2G,ram_free=2G, -q all.q, -V, -sync y, -pe smp 4 ...
Exit status: 0 if every job succeeded, 1 otherwise (the failed jobs' logs are named);
130 on Ctrl-C (SIGINT), 143 on SIGTERM: the signal is passed on to the running jobs.
"""

import os
import signal
import subprocess
import sys
import time
from collections import deque
from pathlib import Path

# The launcher runs under any python3 (no virtual environment needed): the shared, stdlib-only
# module is taken from the source tree this script belongs to.
_ROOT = Path(__file__).resolve().parents[2]
if (_ROOT / "speech_reps" / "parallel.py").is_file():
    sys.path.insert(0, str(_ROOT))

from speech_reps.parallel import (LauncherError, command_string, ended_with_code,  # noqa: E402
                                  log_footer, log_header, parse_job_args, report_failures,
                                  substitute)

PROG = "run.pl"
USAGE = "Usage: run.pl [options] [JOB=1:N] <log-file> <command> ... (run.pl --help for more)"


class Interrupted(Exception):
    def __init__(self, signum, stopped=()):
        self.signum, self.stopped = signum, list(stopped)


def parse_options(options):
    opts = {"max_jobs_run": None, "gpu": 0, "pick": "all", "num_threads": 1}
    for switch, values in options:
        if switch in ("--max-jobs-run", "-tc"):
            if not (values[0].isdigit() and int(values[0]) > 0):
                raise LauncherError(f"invalid option {switch} {values[0]}")
            opts["max_jobs_run"] = min(int(values[0]), opts["max_jobs_run"] or int(values[0]))
        elif switch == "--gpu":
            if not values[0].isdigit():
                raise LauncherError(f"invalid option --gpu {values[0]}")
            opts["gpu"] = int(values[0])
        elif switch == "--pick":
            if values[0] not in ("all", "failed", "incomplete"):
                raise LauncherError("--pick argument must be one of 'all', 'failed' or 'incomplete'")
            opts["pick"] = values[0]
        elif switch in ("--num-threads", "-pe") and values[-1].isdigit():
            opts["num_threads"] = int(values[-1])
    return opts


def visible_gpus():
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [g for g in env.split(",") if g.strip()]
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return []
    return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU")]


def default_max_jobs(num_jobs):
    """Kaldi's default: the number of CPUs, raised to the number of jobs when that is less than 1.4
    times more (no small batch of leftover jobs)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return num_jobs if cpus < num_jobs < 1.4 * cpus else cpus


def picked(pick, log):
    """Kaldi's --pick: (run the job?, else the code it counts with)."""
    if pick == "all":
        return True, None
    code = ended_with_code(log)
    if code is None:
        return True, None  # never ran or did not end
    if code == 0:
        return False, 0
    return (True, None) if pick == "failed" else (False, code)


_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _job_process_setup():
    os.setpgrp()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)  # blocked by run_jobs while it starts a job


class Job:
    def __init__(self, number, log, command, threads, gpu):
        self.number, self.log, self.command, self.threads, self.gpu = number, log, command, threads, gpu
        self.proc, self.start, self.code, self.error = None, None, None, None

    def launch(self):
        """Start the job; False (and self.error) when its log cannot be written."""
        try:
            os.makedirs(os.path.dirname(self.log) or ".", exist_ok=True)
            with open(self.log, "w") as log:
                log.write(log_header(self.command))
        except OSError as e:
            self.error = f"cannot write its log: {e.strerror}"
            return False
        env = dict(os.environ)
        if self.gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = self.gpu
        self.start = time.time()
        with open(self.log, "a") as log:
            # its own process group, so that a signal passed on reaches every process of the job
            # (a pipeline's too); stdin is not the terminal's, as with Kaldi's run.pl
            self.proc = subprocess.Popen(["bash", "-c", self.command], stdin=subprocess.DEVNULL,
                                         stdout=log, stderr=subprocess.STDOUT, env=env,
                                         preexec_fn=_job_process_setup)
        return True

    def finish(self, code):
        self.code = code
        self.proc.returncode = code  # reaped by os.waitpid, not by Popen
        with open(self.log, "a") as log:
            log.write(log_footer(code, time.time() - self.start, self.threads))

    def signal(self, signum):
        try:
            os.killpg(self.proc.pid, signum)
        except (ProcessLookupError, PermissionError):
            pass


def wait_one(running):
    """Reap one finished job of `running` {pid: Job}; returns it."""
    while True:
        pid, status = os.waitpid(-1, 0)
        job = running.pop(pid, None)
        if job is not None:
            job.finish(os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode")
                       else (-(status & 0x7f) if status & 0x7f else status >> 8))
            return job


def run_jobs(jobs, max_jobs):
    """Run the jobs, at most max_jobs at once and one per GPU; on SIGINT/SIGTERM pass the signal on
    to the running jobs, wait for them, and raise Interrupted."""
    pending, running = deque(jobs), {}

    def on_term(signum, _frame):
        raise Interrupted(signum)

    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, on_term)
    try:
        while pending or running:
            busy = {job.gpu for job in running.values()}
            while pending and len(running) < max_jobs and (pending[0].gpu is None or pending[0].gpu not in busy):
                job = pending.popleft()
                # no interruption between starting a job and recording it, so every started job
                # gets the signal passed on
                signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
                try:
                    if job.launch():
                        running[job.proc.pid] = job
                        busy.add(job.gpu)
                finally:
                    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
            if running:
                wait_one(running)
    except (KeyboardInterrupt, Interrupted) as e:
        signum = e.signum if isinstance(e, Interrupted) else signal.SIGINT
        stopped = sorted(running.values(), key=lambda j: j.number)
        for job in stopped:
            job.signal(signum)
        while running:
            try:
                wait_one(running)
            except (KeyboardInterrupt, Interrupted):  # asked again: no more waiting
                for job in running.values():
                    job.signal(signal.SIGKILL)
        raise Interrupted(signum, [job.number for job in stopped]) from None
    return jobs


def main(argv):
    if argv[:1] in (["--help"], ["-h"]):  # asked for: on stdout, success
        print(__doc__)
        return 0
    try:
        args = parse_job_args(PROG, argv)
        opts = parse_options(args.options)
    except LauncherError as e:
        print(f"{PROG}: {e}\n{USAGE}", file=sys.stderr)
        return 1
    command = command_string(args.words)
    gpus = visible_gpus() if opts["gpu"] > 0 else []
    if opts["gpu"] > 0 and not gpus:
        print(f"{PROG}: --gpu {opts['gpu']}: no GPU visible (CUDA_VISIBLE_DEVICES / nvidia-smi)", file=sys.stderr)
        return 1
    failed, jobs = [], []
    for n in args.jobs:
        log = args.log_for(n)
        run, code = picked(opts["pick"], log)
        if run:
            jobs.append(Job(n, log, substitute(command, args.var, n), opts["num_threads"],
                            gpus[(n - args.first) % len(gpus)] if gpus else None))
        elif code != 0:
            failed.append((n, f"code {code}, not rerun with --pick incomplete", log))
    max_jobs = opts["max_jobs_run"] or (len(gpus) if gpus else default_max_jobs(len(args.jobs)))
    try:
        run_jobs(jobs, max_jobs)
    except Interrupted as e:
        name = signal.Signals(e.signum).name
        print(f"{PROG}: interrupted ({name}): {len(e.stopped)} running job(s) stopped, "
              f"{sum(j.proc is None and j.error is None for j in jobs)} not started; logs: {args.log_pattern()}", file=sys.stderr)
        return 128 + e.signum
    failed += [(j.number, j.error or (f"code {j.code}" if j.code >= 0 else f"signal {-j.code}"), j.log)
               for j in jobs if j.code != 0]
    failed.sort()
    return report_failures(PROG, args, failed, sys.stderr)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
