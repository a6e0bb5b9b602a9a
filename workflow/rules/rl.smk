# RL post-training from the SFT model: one job per task x RL system x seed, and the control
# "SFT + the same extra compute" (sft_more) per task x seed.


rule rl:
    input:
        cfg=f"{CFG_DIR}/{{task}}/rl-{{rlsys}}.yaml",
        track=ancient(TRACK),  # bookkeeping: a new pipeline run reruns nothing
        data=f"{R}/data/{{task}}",
        tokens=tokens,
        model=f"{R}/sft/{{task}}",
    output:
        directory(f"{R}/rl/{{task}}/{{rlsys}}/s{{seed}}"),
    conda:
        ENV
    log:
        "logs/rl/{task}/{rlsys}/s{seed}.log",
    localrule: job_local("rl")
    priority: job_priority("rl")
    threads: job_threads("rl")
    resources:
        **job_resources("rl"),
    params:
        launch=launcher("rl"),
        tokens=tokens_arg,
    shell:
        keep_log(
            "{params.launch}speechrl rl --config {input.cfg} --tracking {input.track} --task {wildcards.task} --seed {wildcards.seed} "
            "--algo {wildcards.rlsys} --data {input.data} {params.tokens} --model {input.model}/model --out {output} >> {log} 2>&1"
        )


rule sft_more:
    input:
        cfg=f"{CFG_DIR}/{{task}}/sft_more.yaml",
        track=ancient(TRACK),  # bookkeeping: a new pipeline run reruns nothing
        data=f"{R}/data/{{task}}",
        tokens=tokens,
        model=f"{R}/sft/{{task}}",
    output:
        directory(f"{R}/rl/{{task}}/sft_more/s{{seed}}"),
    conda:
        ENV
    log:
        "logs/sft_more/{task}/s{seed}.log",
    localrule: job_local("sft_more")
    priority: job_priority("sft_more")
    threads: job_threads("sft_more")
    resources:
        **job_resources("sft_more"),
    params:
        launch=launcher("sft_more"),
        tokens=tokens_arg,
    shell:
        keep_log(
            "{params.launch}speechrl sft-more --config {input.cfg} --tracking {input.track} --task {wildcards.task} --seed {wildcards.seed} "
            "--data {input.data} {params.tokens} --model {input.model}/model --out {output} >> {log} 2>&1"
        )
