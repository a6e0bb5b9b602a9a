# Shared names, the experiment grid and input functions (no rules here).
# Systems (speechrl.systems): base, sft, sft_more (control), <preset>, <preset>-<reward> (reward ablation),
# <preset>@<option>=<value> (segmenter sweep).
# Each task has its own settings (speechrl.config.slices.task_config: the top level, then the task's defaults in
# speechrl.tasks, then tasks.<task>); its grid (algorithms, seeds, ablation) comes from them.
import re
import sys
from pathlib import Path

import yaml
from snakemake.exceptions import WorkflowError

sys.path.insert(0, str(Path(workflow.basedir).parent / "src"))  # config + task code: standard library + yaml only
from speechrl.config.slices import model_groups, select, task_config
from speechrl.tasks import TASKS as TASK_REGISTRY

R = config["results_dir"]
TASKS = config["data"]["tasks"]
TASK_CFG = {t: task_config(config, t) for t in TASKS}
MODEL_GROUPS = model_groups(config, TASKS)  # base-model name -> the tasks sharing it
GROUP_OF = {t: g for g, ts in MODEL_GROUPS.items() for t in ts}
CFG = f"{R}/config.yaml"
ENV = "../../envs/speechrl.yaml"  # conda env for --use-conda (relative to this folder)
TRACK = f"{R}/tracking/pipeline.json"


def algorithms(task):
    return TASK_CFG[task]["rl"]["algorithms"]


def seeds(task):
    return TASK_CFG[task]["suite"]["seeds"]


def control(task):
    return ["sft_more"] if TASK_CFG[task]["suite"]["control"] else []


def ablation(task):
    s = TASK_CFG[task]["suite"]
    if task not in s["ablation_tasks"]:
        return []
    return [f"{s['ablation_algorithm']}-{r}" for r in s["ablation_rewards"]]


def segmenter_sweep(task):
    return TASK_CFG[task]["suite"].get("segmenter_sweep", [])


def rl_systems(task):
    return list(dict.fromkeys(algorithms(task) + ablation(task) + segmenter_sweep(task)))


def one_of(names):
    """A wildcard constraint matching exactly these names (a sweep system holds '.', e.g. tau=0.5)."""
    return "|".join(map(re.escape, names))


def systems(task):
    return TASK_CFG[task]["report"]["systems"] + control(task) + rl_systems(task)


RL_SYSTEMS = list(dict.fromkeys(s for t in TASKS for s in rl_systems(t)))
ALL_SYSTEMS = list(dict.fromkeys(s for t in TASKS for s in systems(t)))
TOKENIZED = [t for t in TASKS if TASK_REGISTRY.get(t).tokenized]


wildcard_constraints:
    task="|".join(TASKS),
    group="|".join(MODEL_GROUPS),
    rlsys=one_of(RL_SYSTEMS) or "^$",
    system=one_of(ALL_SYSTEMS),
    seed=r"\d+",


def base_model(task):
    return f"{R}/models/{GROUP_OF[task]}"


def eval_seeds():
    """The seeds every system is evaluated with: one evaluate job per task x system covers them all (the
    imports and scorer models load once, not once per seed), so every task must have the same suite.seeds."""
    got = {t: seeds(t) for t in TASKS}
    if len({tuple(s) for s in got.values()}) > 1:
        raise WorkflowError(f"suite.seeds differ between tasks ({got}); evaluation jobs cover every seed of a "
                            "system, so give all tasks the same seeds (set suite.seeds at the top level only)")
    return next(iter(got.values()), [])


SEEDS = eval_seeds()


def system_model_dir(task, system, seed):
    """The model folder a system is evaluated with: base and SFT are shared by all seeds, RL systems have one each."""
    if system == "base":
        return base_model(task)
    if system == "sft":
        return f"{R}/sft/{task}"
    return f"{R}/rl/{task}/{system}/s{seed}"


def system_models(wildcards):
    return list(dict.fromkeys(system_model_dir(wildcards.task, wildcards.system, sd) for sd in SEEDS))


def system_model_arg(wildcards):
    """`--model` of an evaluate job: its model folder, '{seed}' standing for each seed (speechrl evaluate --seeds)."""
    return str(Path(system_model_dir(wildcards.task, wildcards.system, "{seed}"), "model"))


def eval_out_arg(wildcards):
    """`--out` of an evaluate job: one folder per seed, '{seed}' standing for each."""
    return f"{R}/eval/{wildcards.task}/{wildcards.system}/s{{seed}}"


def tokens(wildcards):
    """The tokenize output of a task whose audio is codec tokens (speechrl.tasks), else nothing."""
    return [f"{R}/tokens/{wildcards.task}"] if wildcards.task in TOKENIZED else []


def tokens_arg(wildcards, input):
    """`--tokens DIR` for tokenized tasks (the job reads codec token ids), else nothing."""
    return f"--tokens {input.tokens}" if input.tokens else ""


def group_data(wildcards):
    return [f"{R}/data/{t}" for t in MODEL_GROUPS[wildcards.group]]


def group_tokens(wildcards):
    return [f"{R}/tokens/{t}" for t in MODEL_GROUPS[wildcards.group] if t in TOKENIZED]


def all_metrics():
    return [f"{R}/eval/{t}/{s}/s{sd}/metrics.json" for t in TASKS for s in systems(t) for sd in seeds(t)]


def all_rl_runs():
    return [f"{R}/rl/{t}/{s}/s{sd}" for t in TASKS for s in rl_systems(t) for sd in seeds(t)]


# ---- Config slices: the part of a task's settings each job reads (speechrl.config.slices) ----------------------
TASK_SLICES = {t: ["data", "sft", "sft_more", "evaluate"] + (["tokenize"] if t in TOKENIZED else [])
               + [f"rl-{s}" for s in rl_systems(t)] for t in TASKS}


def slice_values(wildcards):
    """The config slice a task's job reads, from the task's own settings (common.smk TASK_CFG)."""
    if wildcards.scope == "models":  # a base model: the init_model slice of its tasks (identical by construction)
        return json.dumps(select(TASK_CFG[MODEL_GROUPS[wildcards.slice][0]], "init_model"), sort_keys=True)
    if wildcards.slice not in TASK_SLICES[wildcards.scope]:
        raise WorkflowError(f"no config slice {wildcards.slice} for task {wildcards.scope}")
    return json.dumps(select(TASK_CFG[wildcards.scope], wildcards.slice), sort_keys=True)


def slice_name(wildcards):
    return "init_model" if wildcards.scope == "models" else wildcards.slice


# ---- Site: resources and launcher of each job kind ---------------------------------------------
# From the site file (config/site.yaml, or --config site=PATH; schema workflow/schemas/site.schema.yaml;
# README "Running on a cluster"). Each rule names its job kind, e.g.
#     localrule: job_local("rl")
#     threads: job_threads("rl")
#     resources: **job_resources("rl")
#     params: launch=launcher("rl")      shell: "{params.launch}speechrl rl ..."
JOB_KINDS = ("pipeline", "data", "tokenize", "init_model", "sft", "rl", "sft_more", "evaluate", "report")
TRAINING_KINDS = ("sft", "rl", "sft_more")  # the kinds whose CLI stage runs on an execution backend (ranks)
# Threads of one rank when the site does not set cpus_per_task (experiment settings).
RANK_THREADS = {"data": config["data"]["synthetic"]["workers"], "tokenize": config["threads"], "sft": config["threads"], "rl": config["threads"],
                "sft_more": config["threads"], "evaluate": config["threads"]}


def load_site(path):
    """The site file, validated; a relative path is looked up in the working directory, then the repository."""
    p = Path(path)
    if not p.is_absolute() and not p.exists():
        p = Path(workflow.basedir) / p
    if not p.is_file():
        raise WorkflowError(f"site file {path} not found (give one with --config site=PATH; default config/site.yaml)")
    site = yaml.safe_load(p.read_text()) or {}
    validate(site, "../schemas/site.schema.yaml")
    return site


SITE = load_site(SITE_FILE)


def site_job(kind):
    """One job kind's resources: its own keys over the `cluster` defaults, checked against the cluster."""
    if kind not in JOB_KINDS:
        raise WorkflowError(f"unknown job kind {kind!r}; valid kinds: {', '.join(JOB_KINDS)}")
    cl, job = SITE.get("cluster", {}), SITE.get("jobs", {}).get(kind) or {}
    gpus, nodes = job.get("gpus") or 0, job.get("nodes") or 1
    if gpus > cl.get("gpus_per_node", 0):
        raise WorkflowError(f"site file {SITE_FILE}: jobs.{kind}.gpus={gpus} but cluster.gpus_per_node="
                            f"{cl.get('gpus_per_node', 0)}; lower the job's gpus or raise gpus_per_node")
    ranks = job.get("ranks") or (max(gpus, 1) if kind in TRAINING_KINDS else 1)
    if kind not in TRAINING_KINDS and (ranks > 1 or nodes > 1):
        raise WorkflowError(f"site file {SITE_FILE}: jobs.{kind} asks {nodes} node(s) x {ranks} rank(s), but only "
                            f"{', '.join(TRAINING_KINDS)} run as several ranks; give {kind} one node and one rank "
                            "(its GPUs, if any, are then visible to that one process)")
    cpus = job.get("cpus_per_task") or cl.get("cpus_per_task") or RANK_THREADS.get(kind, 1) * ranks
    pick = lambda key, default: default if job.get(key) is None else job[key]
    return {"local": job.get("local", False), "nodes": nodes, "gpus": gpus, "ranks": ranks, "cpus": cpus,
            "mem_mb": job.get("mem_mb") or cl.get("mem_mb", 4000), "runtime": job.get("runtime") or cl.get("runtime", 60),
            "partition": pick("partition", cl.get("partition", "")), "account": pick("account", cl.get("account", "")),
            "constraint": pick("constraint", cl.get("constraint", "")), "slurm_extra": pick("slurm_extra", cl.get("slurm_extra", "")),
            "rdzv_port": cl.get("rdzv_port", 29500)}


# Start order among jobs that are ready at once: the stages that open the longest chains first (data ->
# tokenize / model -> SFT -> RL / control -> evaluation -> report). Without it Snakemake may run one task's
# RL and evaluations while another task's SFT, the head of a long chain, waits, and the tail runs on one core
# (measured on the quick suite: README "Figures"). Snakemake picks the ready jobs with the largest priority *sum*
# that fit the free cores, so a data job (data.synthetic.workers threads, 2 by default) must outweigh any two
# one-thread jobs, or it waits for two free cores while one-thread jobs keep filling them.
JOB_PRIORITY = {"pipeline": 60, "data": 100, "tokenize": 45, "init_model": 45, "sft": 40, "rl": 20, "sft_more": 20,
                "evaluate": 10, "report": 0}


def job_priority(kind):
    """Snakemake priority of a job kind (higher starts first among ready jobs): JOB_PRIORITY."""
    return JOB_PRIORITY[kind]


def job_local(kind):
    """True when the site runs this job kind on the host running snakemake (localrule), not through SLURM."""
    return bool(site_job(kind)["local"])


def job_threads(kind):
    """Snakemake threads of a job kind: its CPUs (local --cores accounting; SLURM --cpus-per-task)."""
    return site_job(kind)["cpus"]


def job_resources(kind):
    """The `resources:` of a job kind, in the names snakemake-executor-plugin-slurm 2.8 turns into sbatch flags.

    One node: gpu=N (--gpus=N), one task running the launcher. Several nodes: nodes=M, tasks=M (one launcher
    per node), gres=gpu:N (per node) and mpi=srun, so the plugin's job step runs the rule's shell in the batch
    script instead of wrapping it in its own single-task srun; the shell's srun then starts one torchrun per
    node (tasks_per_gpu=0 stops the plugin from turning `tasks` into --ntasks-per-gpu).
    """
    j = site_job(kind)
    res = {"mem_mb": j["mem_mb"], "runtime": j["runtime"], "cpus_per_task": j["cpus"]}
    for key, name in (("partition", "slurm_partition"), ("account", "slurm_account"), ("constraint", "constraint"),
                      ("slurm_extra", "slurm_extra")):
        if j[key]:
            res[name] = j[key]
    if j["nodes"] > 1:
        res.update(nodes=j["nodes"], tasks=j["nodes"], mpi="srun")
        if j["gpus"]:
            res.update(gres=f"gpu:{j['gpus']}", tasks_per_gpu=0)
    elif j["gpus"]:
        res["gpu"] = j["gpus"]
    return res


def launcher(kind):
    """The prefix before `speechrl <stage>`: nothing (1 rank), torchrun (N ranks, one node), srun + torchrun (nodes).

    Across nodes the rule's shell runs on the first node of the allocation (the batch host), so
    "$(hostname)" there is the c10d rendezvous endpoint every node's torchrun joins; the rendezvous id is the
    SLURM job id. torchrun gives each rank RANK / WORLD_SIZE / LOCAL_RANK / MASTER_ADDR / MASTER_PORT.
    """
    j = site_job(kind)
    if j["nodes"] > 1:
        gres = f" --gres=gpu:{j['gpus']}" if j["gpus"] else ""
        return (f"srun --nodes={j['nodes']} --ntasks={j['nodes']} --ntasks-per-node=1 --cpus-per-task={j['cpus']}{gres} "
                f"--kill-on-bad-exit=1 torchrun --nnodes {j['nodes']} --nproc-per-node {j['ranks']} --rdzv-backend c10d "
                f'--rdzv-endpoint "$(hostname)":{j["rdzv_port"]} --rdzv-id "${{SLURM_JOB_ID:-speechrl}}" --no-python ')
    if j["ranks"] > 1:
        return f"torchrun --standalone --nnodes 1 --nproc-per-node {j['ranks']} --no-python "
    return ""


def keep_log(cmd):
    """A rule's shell `cmd` (which appends to `{log}`) with the log kept across attempts of the job.

    Snakemake deletes a job's log: file before it runs the job, a rerun after a kill or a failure
    included (snakemake 9 Job.remove_existing_output; tests/workflow/test_resume_workflow.py), and a SLURM
    requeue reruns the job step, which deletes it again: `>> {log}` alone keeps only the last attempt. A
    hidden hard link `.<log name>.attempts` beside the log keeps the earlier attempts: copied back into
    the new log before `cmd` runs, removed once `cmd` succeeded (the shell runs under `set -e`, so a
    failed or killed attempt leaves it for the next one). Where the file system has no hard links the job
    runs as before and its log keeps only the last attempt.
    """
    return ('keep="$(dirname {log})/.$(basename {log}).attempts"; '
            'if [ -e "$keep" ] && ! [ {log} -ef "$keep" ]; then cat "$keep" > {log}; fi; '
            ': >> {log}; ln -f {log} "$keep" 2> /dev/null || true; '
            f'{cmd}; rm -f "$keep"')
