# Audio tokenization: a task's audio (the fields its registry entry names, speechrl.tasks) -> codec token ids,
# for the tasks whose model reads and writes codec tokens (se, tts). Also measures the codec's round trip.


rule tokenize:
    input:
        cfg=f"{CFG_DIR}/{{task}}/tokenize.yaml",
        track=ancient(TRACK),  # bookkeeping: a new pipeline run reruns nothing
        data=f"{R}/data/{{task}}",
    output:
        directory(f"{R}/tokens/{{task}}"),
    conda:
        ENV
    log:
        "logs/tokenize/{task}.log",
    localrule: job_local("tokenize")
    priority: job_priority("tokenize")
    threads: job_threads("tokenize")
    resources:
        **job_resources("tokenize"),
    params:
        launch=launcher("tokenize"),
    shell:
        keep_log(
            "{params.launch}speechrl tokenize --config {input.cfg} --tracking {input.track} --task {wildcards.task} "
            "--data {input.data} --out {output} >> {log} 2>&1"
        )
