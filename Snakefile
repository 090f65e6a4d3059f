import os

# s2l: Skill-to-LoRA as an incremental Snakemake build. See README.md.
#   snakemake --cores 2                                   everything + build/benchmark.{json,md,png}
#   snakemake --cores 1 build/adapters/conventional-commits    one skill's chain up to its adapter

# The defaults live beside this Snakefile, so `-d <workdir>` runs elsewhere still find them.
configfile: os.path.join(workflow.basedir, "config.yaml")


include: "rules/common.smk"
include: "rules/model.smk"
include: "rules/skill.smk"
include: "rules/synthesize.smk"
include: "rules/dataset.smk"
include: "rules/train.smk"
include: "rules/evaluate.smk"
include: "rules/controls.smk"
include: "rules/benchmark.smk"
include: "rules/merge.smk"
include: "rules/serve.smk"


# Cheap jobs run where Snakemake runs, not as cluster jobs.
localrules:
    all,
    parse_skill,
    benchmark,
    prepare_serving,


onstart:
    record_forced_jobs()


onsuccess:
    report_results()


onerror:
    report_results()  # with --keep-going, what the skills that did build learned


rule all:
    default_target: True
    input:
        expand(ADAPTER, skill=SKILLS),
        BENCHMARK_JSON,
        BENCHMARK_MARKDOWN,
        BENCHMARK_PLOT,
        expand(MERGED, skill=SKILLS) if config["merge"]["enabled"] else [],
