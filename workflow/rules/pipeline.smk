# Pipeline bootstrap: the resolved config every job reads and the MLflow run every job nests under.
import json


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
        "speechrl resolve-config --json {params.cfg:q} --out {output} > {log} 2>&1"


rule tracking_init:
    input:
        CFG,
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
        "speechrl tracking-init --config {input} --out {output} > {log} 2>&1"
