# Shared names, the experiment grid and input functions (no rules here).
# Systems (speechrl.systems): base, sft, sft_more (control), <preset>, <preset>-<reward> (reward ablation).

R = config["results_dir"]
TASKS = config["data"]["tasks"]
SUITE = config["suite"]
SEEDS = SUITE["seeds"]
ALGOS = config["rl"]["algorithms"]
CONTROL = ["sft_more"] if SUITE["control"] else []
RES = config["resources"]
CFG = f"{R}/config.yaml"
ENV = "../../envs/speechrl.yaml"  # conda env for --use-conda (relative to this folder)
TRACK = f"{R}/tracking/pipeline.json"


def ablation(task):
    if task not in SUITE["ablation_tasks"]:
        return []
    return [f"{SUITE['ablation_algorithm']}-{r}" for r in SUITE["ablation_rewards"]]


def systems(task):
    return config["report"]["systems"] + CONTROL + ALGOS + ablation(task)


RL_SYSTEMS = list(dict.fromkeys(ALGOS + [s for t in TASKS for s in ablation(t)]))
ALL_SYSTEMS = list(dict.fromkeys(s for t in TASKS for s in systems(t)))


wildcard_constraints:
    task="|".join(TASKS),
    rlsys="|".join(RL_SYSTEMS) or "^$",
    system="|".join(ALL_SYSTEMS),
    seed=r"\d+",


def system_model(wildcards):
    if wildcards.system == "base":
        return f"{R}/models/base"
    if wildcards.system == "sft":
        return f"{R}/sft/{wildcards.task}"
    return f"{R}/rl/{wildcards.task}/{wildcards.system}/s{wildcards.seed}"


def all_metrics():
    return [f"{R}/eval/{t}/{s}/s{sd}/metrics.json" for t in TASKS for s in systems(t) for sd in SEEDS]


def all_rl_runs():
    return [f"{R}/rl/{t}/{s}/s{sd}" for t in TASKS for s in ALGOS + ablation(t) for sd in SEEDS]
