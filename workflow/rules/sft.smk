# The base model (tiny random-init, or a real checkpoint) and supervised fine-tuning per task.


rule init_model:
    input:
        cfg=f"{CFG_DIR}/init_model.yaml",
        track=ancient(TRACK),  # bookkeeping: a new pipeline run reruns nothing
        data=expand(f"{R}/data/{{task}}", task=TASKS),
    output:
        directory(f"{R}/models/base"),
    conda:
        ENV
    log:
        "logs/init_model.log",
    localrule: job_local("init_model")
    threads: job_threads("init_model")
    resources:
        **job_resources("init_model"),
    params:
        launch=launcher("init_model"),
    shell:
        keep_log(
            "{params.launch}speechrl init-model --config {input.cfg} --tracking {input.track} --data {input.data} "
            "--out {output} >> {log} 2>&1"
        )


rule sft:
    input:
        cfg=f"{CFG_DIR}/sft.yaml",
        track=ancient(TRACK),  # bookkeeping: a new pipeline run reruns nothing
        data=f"{R}/data/{{task}}",
        model=f"{R}/models/base",
    output:
        directory(f"{R}/sft/{{task}}"),
    conda:
        ENV
    log:
        "logs/sft/{task}.log",
    localrule: job_local("sft")
    threads: job_threads("sft")
    resources:
        **job_resources("sft"),
    params:
        launch=launcher("sft"),
    shell:
        keep_log(
            "{params.launch}speechrl sft --config {input.cfg} --tracking {input.track} --task {wildcards.task} "
            "--data {input.data} --model {input.model}/model --out {output} >> {log} 2>&1"
        )
