# Shared names, the resolved config and the MLflow pipeline run every job nests under.
import json

R = config["results_dir"]
TASKS = config["data"]["tasks"]
ALGOS = config["rl"]["algorithms"]
SYSTEMS = config["report"]["systems"] + ALGOS
CFG = f"{R}/config.yaml"
TRACK = f"{R}/tracking/pipeline.json"


wildcard_constraints:
    task="|".join(TASKS),
    algo="|".join(ALGOS),
    system="|".join(SYSTEMS),


rule resolve_config:
    output:
        CFG,
    params:
        cfg=json.dumps(config, sort_keys=True),
    log:
        "logs/resolve_config.log",
    shell:
        "speechrl resolve-config --json {params.cfg:q} --out {output} > {log} 2>&1"


rule tracking_init:
    input:
        CFG,
    output:
        TRACK,
    log:
        "logs/tracking_init.log",
    shell:
        "speechrl tracking-init --config {input} --out {output} > {log} 2>&1"
