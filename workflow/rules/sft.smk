# The base model (tiny random-init, or a real checkpoint) and supervised fine-tuning per task.


rule init_model:
    input:
        cfg=CFG,
        track=TRACK,
        data=expand(f"{R}/data/{{task}}", task=TASKS),
    output:
        directory(f"{R}/models/base"),
    conda:
        ENV
    log:
        "logs/init_model.log",
    shell:
        "speechrl init-model --config {input.cfg} --tracking {input.track} --data {input.data} "
        "--out {output} > {log} 2>&1"


rule sft:
    input:
        cfg=CFG,
        track=TRACK,
        data=f"{R}/data/{{task}}",
        model=f"{R}/models/base",
    output:
        directory(f"{R}/sft/{{task}}"),
    conda:
        ENV
    log:
        "logs/sft/{task}.log",
    threads: config["threads"]
    resources:
        gpu=RES["gpus_sft"],
        mem_mb=RES["mem_mb"],
        runtime=RES["runtime_min"],
        slurm_partition=RES["partition"],
    shell:
        "speechrl sft --config {input.cfg} --tracking {input.track} --task {wildcards.task} "
        "--data {input.data} --model {input.model}/model --out {output} > {log} 2>&1"
