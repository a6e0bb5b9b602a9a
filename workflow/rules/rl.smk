# RL post-training from the SFT model: one job per task x algorithm preset.


rule rl:
    input:
        cfg=CFG,
        track=TRACK,
        data=f"{R}/data/{{task}}",
        model=f"{R}/sft/{{task}}",
    output:
        directory(f"{R}/rl/{{task}}/{{algo}}"),
    conda:
        ENV
    log:
        "logs/rl/{task}/{algo}.log",
    threads: config["threads"]
    shell:
        "speechrl rl --config {input.cfg} --tracking {input.track} --task {wildcards.task} "
        "--algo {wildcards.algo} --data {input.data} --model {input.model}/model --out {output} > {log} 2>&1"
