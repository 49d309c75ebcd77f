# Where jobs run. Any Kaldi launcher works: run.pl (this machine), slurm.pl, queue.pl.
export featurize_cmd="run.pl"
# export featurize_cmd="slurm.pl --mem 8G"            # a Slurm cluster (conf: --config conf/slurm.conf)
# export featurize_cmd="slurm.pl --mem 8G --gpu 1"    # ... with one GPU per job (and --gpu 0 to run.sh)
