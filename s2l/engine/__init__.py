"""The build engine: the config, one declaration per stage and every build path, stage specs and plan
keys, the build plan, running one job (restore or build, manifests), the content-addressed store,
hashing, ``s2l status``, scheduler resources, the base model's source. No torch: Snakemake imports
this at every run and in every cluster job. Imports only s2l.skills."""
