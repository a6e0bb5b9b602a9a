# The base model (tiny random-init, or a real checkpoint) and supervised fine-tuning per task.


rule init_model:
    input:
        cfg=f"{CFG_DIR}/models/{{group}}.yaml",
        track=ancient(TRACK),  # bookkeeping: a new pipeline run reruns nothing
        data=group_data,
        tokens=group_tokens,
    output:
        directory(f"{R}/models/{{group}}"),
    conda:
        ENV
    log:
        "logs/init_model/{group}.log",
    localrule: job_local("init_model")
    priority: job_priority("init_model")
    threads: job_threads("init_model")
    resources:
        **job_resources("init_model"),
    params:
        launch=launcher("init_model"),
        tokens=lambda wildcards, input: f"--tokens {input.tokens}" if input.tokens else "",
    shell:
        keep_log(
            "{params.launch}speechrl init-model --config {input.cfg} --tracking {input.track} --data {input.data} "
            "{params.tokens} --out {output} >> {log} 2>&1"
        )


rule sft:
    input:
        cfg=f"{CFG_DIR}/{{task}}/sft.yaml",
        track=ancient(TRACK),  # bookkeeping: a new pipeline run reruns nothing
        data=f"{R}/data/{{task}}",
        tokens=tokens,
        model=lambda wildcards: base_model(wildcards.task),
    output:
        directory(f"{R}/sft/{{task}}"),
    conda:
        ENV
    log:
        "logs/sft/{task}.log",
    localrule: job_local("sft")
    priority: job_priority("sft")
    threads: job_threads("sft")
    resources:
        **job_resources("sft"),
    params:
        launch=launcher("sft"),
        tokens=tokens_arg,
    shell:
        keep_log(
            "{params.launch}speechrl sft --config {input.cfg} --tracking {input.track} --task {wildcards.task} "
            "--data {input.data} {params.tokens} --model {input.model}/model --out {output} >> {log} 2>&1"
        )
