"""What the multiprocess executor's forkserver runs once per run, before it forks any step
(COSTUDY_EXECUTOR=multiprocess, costudy_pipelines/defs/executor.py): Dagster and the project
imported, the project's Definitions built, its repository and jobs resolved. Each step's
process is forked from there and starts with all of it: importing and building them costs
seconds of CPU (more than ten on a loaded two-core machine), which a spawned process would
pay in every step. The repository and jobs are frozen from the garbage collector with the
rest (costudy_pipelines/load_context.py): no forked step's collection walks them, nor touches
their pages, which the fork shares until written.
"""

import gc

from costudy_pipelines.definitions import project_definitions

project_definitions().get_repository_def().get_all_jobs()
gc.freeze()
