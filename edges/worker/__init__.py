"""The worker: runs jobs (`manage.py run_worker`) and enqueues the periodic ones (schedule.py)."""
