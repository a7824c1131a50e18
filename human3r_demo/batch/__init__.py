"""Many sources, one command: a resumable, fault-tolerant batch of runs on Ray.

::

    from human3r_demo.batch import BatchJob, run_batch

    report = run_batch([BatchJob("a.mp4"), BatchJob("seq_dir/", name="emdb_P0_00", options_override={"reset_interval": 50})],
                       RunOptions(model="human3r_672S"), "runs/", workers=2)
    print(report.summary_line)

One folder per source (exactly what ``python -m human3r_demo run`` writes), finished runs skipped on the
next call, failed clips recorded and retried, one model per worker. :mod:`.inputs` names the jobs and
knows a finished run, :mod:`.worker` is the Ray actor, :mod:`.engine` schedules, :mod:`.report` writes
``batch.json`` / ``batch.csv`` and draws the progress bar.
"""

from .engine import WorkerPlan, plan_workers, run_batch, start_local_ray
from .inputs import BatchError, BatchJob, expand_inputs, fingerprint, finished_run, name_jobs
from .report import STATUSES, BatchReport, ClipRecord
from .worker import ClipEvent, WorkerInfo

__all__ = ["STATUSES", "BatchError", "BatchJob", "BatchReport", "ClipEvent", "ClipRecord", "WorkerInfo", "WorkerPlan",
           "expand_inputs", "fingerprint", "finished_run", "name_jobs", "plan_workers", "run_batch", "start_local_ray"]
