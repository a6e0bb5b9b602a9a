# Shared names and input functions (no rules here).

R = config["results_dir"]
TASKS = config["data"]["tasks"]
ALGOS = config["rl"]["algorithms"]
SYSTEMS = config["report"]["systems"] + ALGOS
CFG = f"{R}/config.yaml"
ENV = "../../envs/speechrl.yaml"  # conda env for --use-conda (relative to this folder)
TRACK = f"{R}/tracking/pipeline.json"


wildcard_constraints:
    task="|".join(TASKS),
    algo="|".join(ALGOS),
    system="|".join(SYSTEMS),


def system_model(wildcards):
    if wildcards.system == "base":
        return f"{R}/models/base"
    if wildcards.system == "sft":
        return f"{R}/sft/{wildcards.task}"
    return f"{R}/rl/{wildcards.task}/{wildcards.system}"
