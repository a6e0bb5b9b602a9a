# speechrl: data -> model -> SFT -> RL (one job per algorithm) -> evaluation -> report, tracked in MLflow.
# Local:  snakemake --cores 2   (or --profile workflow/profiles/local)
# SLURM:  snakemake --profile slurm   (site: config/site.yaml or --config site=PATH)
# Another suite: snakemake --cores 2 --configfile my-suite.yaml
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


# The site (cluster facts, resources and launcher per job kind) is not experiment config: config/site.yaml,
# or --config site=PATH; validated against workflow/schemas/site.schema.yaml in workflow/rules/common.smk.
SITE_FILE = config.pop("site", "config/site.yaml")
validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/pipeline.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/tokenize.smk"
include: "workflow/rules/sft.smk"
include: "workflow/rules/rl.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        f"{R}/report/index.html",
