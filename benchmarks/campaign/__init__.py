"""The fault campaign's crash scenarios: real processes, real SIGKILLs, full disks.

Each scenario does real damage to a real training run, inspects what is left on disk,
resumes, and compares the result with a run that was never interrupted:

- `benchmarks.campaign.sweep`: one training process, SIGKILLed at a seeded sweep of
  points (training steps, a validation pass, a checkpoint write at every stage);
- `benchmarks.campaign.ranks`: one of two gloo ranks SIGKILLed from outside;
- `benchmarks.campaign.disk`: the disk fills up during a checkpoint write.

A case comes back as a `CaseResult`; `Tally` adds cases up into an `Outcome` (tried,
survived, data lost, hangs, seconds). The tests of ``tests/faults`` assert on the cases,
and ``benchmarks/faults.py`` runs the same functions and prints the outcomes as a table.
Results and checkpoint comparison (through `helios.testing.assert_tree_equal`) are in
`benchmarks.campaign.results` and `benchmarks.campaign.checkpoints`; the classifier every
scenario trains, in `benchmarks.campaign.workload`.

Single-process runs happen in children forked from the caller, which has imported torch
already, with one torch thread: a run costs a fork, not a new interpreter
(`benchmarks.campaign.processes`). The faults inside a child (dying halfway through a
checkpoint write, a disk that fills up) are made there by replacing what
``helios/trainer/_checkpoint.py`` calls (``torch.save``, ``os.replace``, ``os.fsync``,
``os.fdopen``, ``tempfile.mkstemp``) or by mounting a small tmpfs in a private mount
namespace; helios itself has no hooks for any of this.

The package imports neither pytest nor hypothesis, nor anything under ``tests``: the
2-rank scenario's worker processes import it (for its model) when they start.
"""
