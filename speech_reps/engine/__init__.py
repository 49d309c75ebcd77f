"""The data path of steps/featurize.py, top to bottom (one module per stage):

job.py        Job: what to featurize, where, how (validated once); check_job, the checks before work
inputs.py     one utterance in a loader worker: audio -> the model's wave preparation -> CPU front end
prefetch.py   the loader worker processes (``--num-workers``), results in data-dir order
input_stage.py all input preparation the main process sees: workers, CMVN (speaker statistics
              included), the batched GPU front end; items are Ready / Replayed / Failed
batching.py   length buckets: the batch plan
output.py     model outputs handed to the writer thread (on a GPU: left there, behind an event)
writer.py     the feature writer in its own thread
run.py        the loop tying them together, and the files around the archive

Nothing here imports a deep-learning framework at import time.
"""
