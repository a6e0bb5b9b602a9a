# Pipeline bootstrap: the resolved config, the config slice each job reads, and the MLflow run
# every job nests under.
#
# Only what changed reruns: a job's cfg input is {R}/config/<slice>.yaml, the resolved config with
# every key outside the job's slice reset to its default (speechrl.config.slices). config_slice
# carries the slice's values in its params and reads nothing else, so Snakemake rewrites a slice
# file, and reruns the jobs that read it, only when a key of that slice changed. The whole config
# is checked here, when the DAG is built (types, bounds, cross-field checks), before any job runs;
# resolve_config writes it in full for the report.
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "src"))  # config code: standard library + yaml only
from speechrl.config import ConfigError, parse_config
from speechrl.config.slices import select, slice_names

try:
    parse_config(config, registries=False)  # registry names: the schema above lists them
except ConfigError as e:
    raise WorkflowError(f"config: {e}") from None

SLICE_NAMES = slice_names(RL_SYSTEMS)
CFG_DIR = f"{R}/config"  # {CFG_DIR}/<slice>.yaml: the cfg input of a job


rule resolve_config:
    output:
        CFG,
    params:
        cfg=json.dumps(config, sort_keys=True),
    conda:
        ENV
    log:
        "logs/resolve_config.log",
    localrule: job_local("pipeline")
    threads: job_threads("pipeline")
    resources:
        **job_resources("pipeline"),
    shell:
        "speechrl resolve-config --json {params.cfg:q} --out {output} >> {log} 2>&1"


rule config_slice:
    output:
        f"{CFG_DIR}/{{slice}}.yaml",
    params:
        values=lambda wildcards: json.dumps(select(config, wildcards.slice), sort_keys=True),
    wildcard_constraints:
        slice="|".join(SLICE_NAMES),
    conda:
        ENV
    log:
        "logs/config/{slice}.log",
    localrule: job_local("pipeline")
    threads: job_threads("pipeline")
    resources:
        **job_resources("pipeline"),
    shell:
        "speechrl resolve-config --json {params.values:q} --slice {wildcards.slice} --out {output} >> {log} 2>&1"


rule tracking_init:
    input:
        f"{CFG_DIR}/tracking.yaml",
    output:
        TRACK,
    conda:
        ENV
    log:
        "logs/tracking_init.log",
    localrule: job_local("pipeline")
    threads: job_threads("pipeline")
    resources:
        **job_resources("pipeline"),
    shell:
        "speechrl tracking-init --config {input} --out {output} >> {log} 2>&1"
