# Data: synthesise (or, later, download) a task's spoken dataset into the one manifest format.


rule data:
    input:
        cfg=f"{CFG_DIR}/{{task}}/data.yaml",
        track=ancient(TRACK),  # bookkeeping: a new pipeline run reruns nothing
    output:
        directory(f"{R}/data/{{task}}"),
    conda:
        ENV
    log:
        "logs/data/{task}.log",
    localrule: job_local("data")
    priority: job_priority("data")
    threads: job_threads("data")
    resources:
        **job_resources("data"),
    params:
        launch=launcher("data"),
    shell:
        keep_log(
            "{params.launch}speechrl data --config {input.cfg} --tracking {input.track} --task {wildcards.task} "
            "--out {output} >> {log} 2>&1"
        )
