# Pipeline bootstrap: the resolved config, the config slice each job reads, and the MLflow run
# every job nests under.
#
# Only what changed reruns: a job's cfg input is {R}/config/<task>/<slice>.yaml, its task's settings with
# every key outside the job's slice reset to its default (speechrl.config.slices; a base model's:
# {R}/config/models/<family>.yaml). config_slice
# carries the slice's values in its params and reads nothing else, so Snakemake rewrites a slice
# file, and reruns the jobs that read it, only when a key of that slice changed. The whole config
# is checked here, when the DAG is built (types, bounds, cross-field checks), before any job runs;
# resolve_config writes it in full for the report.
import json

from speechrl.config import ConfigError, parse_config

try:
    parse_config(config, registries=False)  # registry names: the schema above lists them
except ConfigError as e:
    raise WorkflowError(f"config: {e}") from None

CFG_DIR = f"{R}/config"  # {CFG_DIR}/<task>/<slice>.yaml, {CFG_DIR}/models/<group>.yaml: the cfg input of a job
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
    priority: job_priority("pipeline")
    threads: job_threads("pipeline")
    resources:
        **job_resources("pipeline"),
    shell:
        "speechrl resolve-config --json {params.cfg:q} --out {output} >> {log} 2>&1"


rule config_slice:
    output:
        f"{CFG_DIR}/{{scope}}/{{slice}}.yaml",
    params:
        values=slice_values,
        name=slice_name,
    wildcard_constraints:
        scope="|".join([*TASKS, "models"]),
        slice=one_of(sorted({s for ss in TASK_SLICES.values() for s in ss} | set(MODEL_GROUPS))),
    conda:
        ENV
    log:
        "logs/config/{scope}/{slice}.log",
    localrule: job_local("pipeline")
    priority: job_priority("pipeline")
    threads: job_threads("pipeline")
    resources:
        **job_resources("pipeline"),
    shell:
        "speechrl resolve-config --json {params.values:q} --slice {params.name} --out {output} >> {log} 2>&1"


rule tracking_slice:
    output:
        f"{CFG_DIR}/tracking.yaml",
    params:
        values=json.dumps(select(config, "tracking"), sort_keys=True),
    conda:
        ENV
    log:
        "logs/config/tracking.log",
    localrule: job_local("pipeline")
    priority: job_priority("pipeline")
    threads: job_threads("pipeline")
    resources:
        **job_resources("pipeline"),
    shell:
        "speechrl resolve-config --json {params.values:q} --slice tracking --out {output} >> {log} 2>&1"


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
    priority: job_priority("pipeline")
    threads: job_threads("pipeline")
    resources:
        **job_resources("pipeline"),
    shell:
        "speechrl tracking-init --config {input} --out {output} >> {log} 2>&1"
